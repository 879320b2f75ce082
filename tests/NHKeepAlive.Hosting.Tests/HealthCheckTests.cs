using System;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Hosting.Tests;

[TestFixture]
public sealed class HealthCheckTests
{
    private static IHost Host(string connectionString, Action<KeepAliveOptions>? configure = null) =>
        HostedPools.Build((services, _) =>
        {
            services.AddKeepAliveDataSource(connectionString, o =>
            {
                o.ShutdownGracePeriod = TimeSpan.Zero;
                o.ConnectionTimeout = TimeSpan.FromSeconds(10);
                o.ValidationTimeout = TimeSpan.FromSeconds(2);
                configure?.Invoke(o);
            });
            services.AddHealthChecks().AddKeepAliveHealthCheck(timeout: TimeSpan.FromSeconds(3));
        });

    private static async Task<HealthReportEntry> Check(IHost host)
    {
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        var entry = report.Entries["nhkeepalive"];
        TestContext.Out.WriteLine($"{entry.Status}: {entry.Description} [{string.Join(", ", entry.Data.Select(d => $"{d.Key}={d.Value}"))}]");
        Assert.That(string.Join(" ", entry.Description, string.Join(" ", entry.Data.Values), entry.Exception), Does.Not.Contain(TestServer.Password));
        return entry;
    }

    [Test]
    public async Task Healthy_when_a_connection_can_be_had_and_answers()
    {
        using var host = Host(HostedPools.ConnectionString);
        await host.StartAsync();
        var entry = await Check(host);
        Assert.That(entry.Status, Is.EqualTo(HealthStatus.Healthy));
        Assert.That(entry.Data.Keys, Is.SupersetOf(new[] { "pool", "active", "idle", "pending", "hosts", "max" }));
        Assert.That(entry.Data["active"], Is.EqualTo(0), "the check gave its connection back");
        Assert.That(entry.Data["idle"], Is.EqualTo(1));
        await host.StopAsync();
    }

    [Test]
    public async Task A_full_pool_is_judged_from_the_statistics_without_taking_or_waiting_and_is_Degraded_while_callers_wait()
    {
        using var host = Host(HostedPools.ConnectionString, o => o.MaxPoolSize = 1);
        await host.StartAsync();
        var dataSource = host.Services.GetRequiredService<KeepAliveDataSource>();
        var held = await dataSource.OpenConnectionAsync();
        var created = dataSource.Pool.GetStatistics().Created;

        var watch = Stopwatch.StartNew();
        var entry = await Check(host);
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)), "the check did not wait for a connection");
        Assert.That(entry.Status, Is.EqualTo(HealthStatus.Healthy));
        Assert.That(entry.Description, Does.Contain("not probed"));
        Assert.That(dataSource.Pool.GetStatistics().Created, Is.EqualTo(created), "the check opened nothing");

        // A caller waits: Degraded, still without taking anything.
        var waiter = dataSource.OpenConnectionAsync().AsTask();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (dataSource.Pool.GetStatistics().Pending == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(10);
        watch.Restart();
        entry = await Check(host);
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)));
        Assert.That(entry.Status, Is.EqualTo(HealthStatus.Degraded));
        Assert.That(entry.Data["pending"], Is.EqualTo(1));

        // The waiter, not the check, gets the connection given back.
        await held.DisposeAsync();
        await using (var next = await waiter)
            Assert.That(next.State, Is.EqualTo(System.Data.ConnectionState.Open));
        Assert.That((await Check(host)).Status, Is.EqualTo(HealthStatus.Healthy));
        await host.StopAsync();
    }

    [Test]
    public async Task Unhealthy_when_no_server_answers()
    {
        var port = HostedPools.ClosedPort();
        using var host = Host(TestServer.ConnectionString(MySqlDriver.MySqlConnector, port));
        await host.StartAsync();
        var watch = Stopwatch.StartNew();
        var entry = await Check(host);
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "bounded");
        Assert.That(entry.Status, Is.EqualTo(HealthStatus.Unhealthy));
        Assert.That(entry.Description, Does.StartWith("no server answered"));
        await host.StopAsync();
    }

    [Test]
    public async Task Unhealthy_while_the_server_is_stopped_and_Healthy_again_when_it_is_back()
    {
        if (!TestServer.CanControl)
            Assert.Ignore("NHK_TEST_SERVER_CONTROL is not set: this test stops and starts the server.");
        using var host = Host(HostedPools.ConnectionString);
        await host.StartAsync();
        Assert.That((await Check(host)).Status, Is.EqualTo(HealthStatus.Healthy));
        TestServer.Control("down");
        try
        {
            Assert.That((await Check(host)).Status, Is.EqualTo(HealthStatus.Unhealthy));
        }
        finally
        {
            TestServer.Control("up");
        }

        Assert.That((await Check(host)).Status, Is.EqualTo(HealthStatus.Healthy));
        await host.StopAsync();
    }

    [Test]
    public async Task Degraded_when_a_host_of_the_list_is_left()
    {
        var dead = HostedPools.ClosedPort();
        var connectionString = TestServer.ConnectionString(MySqlDriver.MySqlConnector)
            .Replace($"Server={TestServer.Host};Port={TestServer.Port}", $"Server={TestServer.Host}:{dead},{TestServer.Host}:{TestServer.Port}", StringComparison.Ordinal);
        Assert.That(connectionString, Does.Contain($":{dead},"));
        using var host = Host(connectionString);
        await host.StartAsync();
        var entry = await Check(host);
        Assert.That(entry.Status, Is.EqualTo(HealthStatus.Degraded));
        Assert.That(entry.Description, Does.Contain("1 of 2 host(s) left"));
        Assert.That(entry.Data["hosts"], Does.Contain($"{TestServer.Host}:{dead} left"));
        await host.StopAsync();
    }
}
