using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NHibernate;

namespace NHKeepAlive.NHibernate.Hosting;

/// <summary>
/// Builds the registered <see cref="ISessionFactory"/> when the host starts, so that a bad option, connection
/// string or mapping stops the start rather than failing the first request.
/// </summary>
internal sealed class KeepAliveSessionFactoryStarter(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = services.GetRequiredService<ISessionFactory>();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
