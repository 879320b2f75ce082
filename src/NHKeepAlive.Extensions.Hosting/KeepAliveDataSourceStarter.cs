using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace NHKeepAlive.Extensions.Hosting;

/// <summary>
/// Builds the registered <see cref="KeepAliveDataSource"/> when the host starts, so that a bad option or
/// connection string stops the start with the core's <see cref="KeepAliveConfigurationException"/> rather
/// than failing the first request. Building a pool opens no connection (except <c>MinIdle</c> ones, in the background).
/// </summary>
internal sealed class KeepAliveDataSourceStarter(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = services.GetRequiredService<KeepAliveDataSource>();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
