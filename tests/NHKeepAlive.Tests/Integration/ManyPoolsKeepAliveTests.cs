using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// Many pools (a database per tenant) share the process's few housekeeping threads: their keepalives stay on
/// schedule while the thread pool is blocked, and one pool whose path is blackholed delays nobody else's.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class ManyPoolsKeepAliveTests(MySqlDriver driver) : IntegrationTest(driver)
{
    private const int WaitTimeoutSeconds = 3; // the keepalive pings every 1.5 s

    [Test]
    public void Fifty_pools_keep_their_idle_connections_alive_while_the_thread_pool_is_blocked()
    {
        using var waitTimeout = Admin.GlobalWaitTimeout(WaitTimeoutSeconds);
        var pools = Enumerable.Range(0, 50).Select(_ => CreatePool(o => o.ValidationTimeout = TimeSpan.FromSeconds(1))).ToList();
        var ids = pools.Select(IdleConnectionOf).ToList();
        var pingsBefore = pools.Select(p => p.GetStatistics().KeepAlivePings).ToList();

        // Far more thread-pool work than it has threads, blocked for wait_timeout + 5 s.
        ThreadPool.GetMinThreads(out var minimum, out _);
        using var release = new ManualResetEventSlim(false);
        var blocked = Enumerable.Range(0, minimum * 4).Select(_ => Task.Run(() => release.Wait(TimeSpan.FromSeconds(60)))).ToArray();
        try
        {
            Elapse(TimeSpan.FromSeconds(WaitTimeoutSeconds + 5));
            Assert.That(Admin.ConnectionIds(), Is.SupersetOf(ids), "the server kept every pool's idle connection");
        }
        finally
        {
            release.Set();
            Task.WaitAll(blocked, TimeSpan.FromSeconds(60));
        }

        var grew = pools.Select((p, i) => p.GetStatistics().KeepAlivePings - pingsBefore[i]).ToList();
        TestContext.Out.WriteLine($"{Driver}: keepalive pings per pool in {WaitTimeoutSeconds + 5} s: {grew.Min()} to {grew.Max()}");
        Assert.That(grew, Has.All.GreaterThanOrEqualTo(3), "every pool's keepalive kept its schedule (every 1.5 s) throughout");
        Assert.That(pools.Sum(p => p.GetStatistics().Evicted), Is.Zero, "no healthy connection aborted");
        for (var i = 0; i < pools.Count; i++)
        {
            using var connection = pools[i].Rent();
            Assert.That(ConnectionId(connection), Is.EqualTo(ids[i]), "the same connection, still alive, with no error");
        }
    }

#if NET // The chaos proxy uses .NET Core socket APIs (see the project file).
    [Test]
    public void A_pool_whose_path_is_blackholed_does_not_stop_the_other_pools_keepalive()
    {
        using var waitTimeout = Admin.GlobalWaitTimeout(WaitTimeoutSeconds);
        using var proxy = new ChaosProxy(TestServer.Port);
        var stuck = CreatePool(o => o.ValidationTimeout = TimeSpan.FromSeconds(2), proxy.Port);
        using (stuck.Rent())
        {
        }

        var pools = Enumerable.Range(0, 20).Select(_ => CreatePool(o => o.ValidationTimeout = TimeSpan.FromSeconds(1))).ToList();
        var ids = pools.Select(IdleConnectionOf).ToList();
        var pingsBefore = pools.Select(p => p.GetStatistics().KeepAlivePings).ToList();

        proxy.BlackholeEverything(); // its pings, and its reconnects, now wait out their timeouts
        Elapse(TimeSpan.FromSeconds(WaitTimeoutSeconds + 5));

        Assert.That(Admin.ConnectionIds(), Is.SupersetOf(ids), "the server kept every other pool's idle connection");
        var grew = pools.Select((p, i) => p.GetStatistics().KeepAlivePings - pingsBefore[i]).ToList();
        TestContext.Out.WriteLine($"{Driver}: beside a blackholed pool, keepalive pings per pool in {WaitTimeoutSeconds + 5} s: {grew.Min()} to {grew.Max()}; housekeeping threads {KeepAlivePool.LiveHousekeepers} registered, {HousekeepingScheduler.Shared.Threads} threads");
        Assert.That(grew, Has.All.GreaterThanOrEqualTo(3), "every other pool's keepalive kept its schedule");
        Assert.That(HousekeepingScheduler.Shared.Threads, Is.LessThanOrEqualTo(HousekeepingScheduler.MaxThreads));
        for (var i = 0; i < pools.Count; i++)
        {
            using var connection = pools[i].Rent();
            Assert.That(ConnectionId(connection), Is.EqualTo(ids[i]), "the same connection, still alive");
        }

        stuck.Dispose();
        proxy.Dispose(); // the blackholed flows end on the server too
    }
#endif

    /// <summary>Opens one connection of <paramref name="pool"/>, gives it back idle, and returns its server id.</summary>
    private static long IdleConnectionOf(KeepAlivePool pool)
    {
        using var connection = pool.Rent();
        return ConnectionId(connection);
    }
}
