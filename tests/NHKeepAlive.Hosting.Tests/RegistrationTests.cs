using System;
using System.Data.Common;
using System.Threading.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Hosting.Tests;

[TestFixture]
public sealed class RegistrationTests
{
    [Test]
    public async Task The_data_source_resolves_as_itself_and_as_DbDataSource_and_is_disposed_with_the_host()
    {
        KeepAliveDataSource dataSource;
        using (var host = HostedPools.Build((services, _) => services.AddKeepAliveDataSource(HostedPools.ConnectionString, o => o.ShutdownGracePeriod = TimeSpan.Zero)))
        {
            await host.StartAsync();
            dataSource = host.Services.GetRequiredService<KeepAliveDataSource>();
            Assert.That(host.Services.GetRequiredService<DbDataSource>(), Is.SameAs(dataSource));
            Assert.That(host.Services.GetRequiredService<KeepAliveDataSource>(), Is.SameAs(dataSource), "a singleton");
            await using (var connection = await dataSource.OpenConnectionAsync())
            {
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT 1";
                Assert.That(Convert.ToInt32(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(1));
            }

            Assert.That(dataSource.ConnectionString, Does.Not.Contain(TestServer.Password));
            await host.StopAsync();
        }

        Assert.Throws<ObjectDisposedException>(() => dataSource.OpenConnection(), "the pool was disposed with the host");
    }

    [Test]
    public async Task An_asynchronously_disposed_host_disposes_the_pool_too()
    {
        // WebApplication and `await using` dispose the container asynchronously, which calls DbDataSource.DisposeAsync.
        var host = HostedPools.Build((services, _) => services.AddKeepAliveDataSource(HostedPools.ConnectionString, o => o.ShutdownGracePeriod = TimeSpan.Zero));
        await host.StartAsync();
        var dataSource = host.Services.GetRequiredService<KeepAliveDataSource>();
        await host.StopAsync();
        await ((IAsyncDisposable)host).DisposeAsync();
        Assert.ThrowsAsync<ObjectDisposedException>(async () => await dataSource.OpenConnectionAsync());
    }

    [Test]
    public async Task The_pool_is_built_when_the_host_starts_not_at_the_first_request()
    {
        using var host = HostedPools.Build((services, _) => services.AddKeepAliveDataSource(HostedPools.ConnectionString, o => o.MaxPoolSize = 0));
        var error = Assert.ThrowsAsync<KeepAliveConfigurationException>(() => host.StartAsync());
        Assert.That(error!.Message, Does.Contain("MaxPoolSize"));
    }

    [Test]
    public void A_second_registration_keeps_the_first()
    {
        var services = new ServiceCollection();
        services.AddKeepAliveDataSource(HostedPools.ConnectionString, o => o.PoolName = "first");
        services.AddKeepAliveDataSource(HostedPools.ConnectionString, o => o.PoolName = "second");
        using var provider = services.BuildServiceProvider();
        Assert.That(provider.GetRequiredService<KeepAliveDataSource>().Pool.Name, Is.EqualTo("first"));
    }
}
