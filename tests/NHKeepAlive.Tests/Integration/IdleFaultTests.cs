using System;
using System.Linq;
using System.Threading.Tasks;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>Connections that die while idle in the pool: callers must never see it.</summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class IdleFaultTests(MySqlDriver driver) : IntegrationTest(driver)
{
    [Test]
    public void Connections_dropped_by_the_server_wait_timeout_are_replaced_without_an_error()
    {
        using var _ = Admin.GlobalWaitTimeout(1);
        using var pool = CreatePool(o => o.KeepAliveInterval = TimeSpan.Zero); // no keepalive: let them die
        var held = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList();
        var ids = held.Select(ConnectionId).ToList();
        held.ForEach(c => pool.Return(c));

        Eventually(() => !Admin.ConnectionIds().Intersect(ids).Any(), TimeSpan.FromSeconds(15), "the server dropped the idle connections");
        var errors = Enumerable.Range(0, 6).Select(_ => Request(pool)).Where(e => e is not null).ToList();

        Assert.That(errors, Is.Empty);
        var stats = pool.GetStatistics();
        Assert.That((stats.SocketCheckFailures, stats.ValidationFailures), Is.EqualTo((3L, 0L)), "each dead connection was found by its socket on checkout: no ping, and not by a caller");
        Assert.That(Log.Messages("ConnectionEvicted"), Has.Some.Contain("SocketClosed"));
    }

    // Plain: the pool pings on the wire itself (WirePing); compressed: through the driver's Ping().
    [TestCase(false)]
    [TestCase(true)]
    public void The_keepalive_alone_keeps_idle_connections_alive_past_a_short_wait_timeout(bool compressed)
    {
        using var _ = Admin.GlobalWaitTimeout(2);
        // A pool of three: a request that comes while a keepalive batch has all three out waits for one (the
        // batch holds their slots) instead of opening a fourth.
        using var pool = CreatePool(o =>
        {
            o.MaxPoolSize = 3;
            o.ConnectionString += compressed ? ";UseCompression=true" : string.Empty;
        });
        var held = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList();
        Assert.That(held.Select(c => Drivers.SocketAborter.Inspect(c.Physical()).Plain), Has.All.EqualTo(!compressed));
        var ids = held.Select(ConnectionId).ToList();
        held.ForEach(c => pool.Return(c));
        Assert.That(pool.GetStatistics().KeepAliveInterval, Is.EqualTo(TimeSpan.FromSeconds(1)), "half of wait_timeout");

        Elapse(TimeSpan.FromSeconds(5)); // two and a half wait_timeouts of idle

        Assert.That(Admin.ConnectionIds(), Is.SupersetOf(ids), "the server kept every idle connection");
        var stats = pool.GetStatistics();
        Assert.That(stats.KeepAlivePings, Is.GreaterThanOrEqualTo(6), "every idle connection, more than once");
        Assert.That(stats.Evicted, Is.Zero);
        Assert.That(Enumerable.Range(0, 3).Select(_ => Request(pool)), Has.All.Null);
        Assert.That(pool.GetStatistics().Created, Is.EqualTo(3));
    }

    [Category(DriverContractTests.Contract)]
    [Test]
    public void Idle_connections_killed_on_the_server_are_replaced_without_an_error()
    {
        using var pool = CreatePool(o => o.ValidationBypassWindow = TimeSpan.FromMilliseconds(200));
        var held = Enumerable.Range(0, 4).Select(_ => pool.Rent()).ToList();
        var ids = held.Select(ConnectionId).ToList();
        held.ForEach(c => pool.Return(c));
        Settled(pool);

        Admin.KillAll(ids);
        Eventually(() => !Admin.ConnectionIds().Intersect(ids).Any(), TimeSpan.FromSeconds(10), "the killed connections are gone");
        Elapse(TimeSpan.FromMilliseconds(250)); // past the bypass window, as a real idle would be
        var errors = Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => Request(pool)))).Result.Where(e => e is not null).ToList();

        Assert.That(errors, Is.Empty);
        Assert.That(pool.GetStatistics().SocketCheckFailures, Is.EqualTo(4));
    }

    [Category(DriverContractTests.Contract)]
    [TestCase(false)]
    [TestCase(true)]
    public async Task Connections_killed_right_after_their_return_are_never_handed_out_inside_the_bypass_window(bool async)
    {
        using var pool = CreatePool(o => o.KeepAliveInterval = TimeSpan.Zero); // the default 500 ms window
        var held = Enumerable.Range(0, 4).Select(_ => pool.Rent()).ToList();
        var ids = held.Select(ConnectionId).ToList();
        held.ForEach(c => pool.Return(c));
        Settled(pool);

        Admin.KillAll(ids); // within a few ms of the return
        Eventually(() => !Admin.ConnectionIds().Intersect(ids).Any(), TimeSpan.FromSeconds(10), "the server closed them");
        var errors = (await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => async ? RequestAsync(pool) : Task.FromResult(Request(pool)))))).Where(e => e is not null).ToList();

        Assert.That(errors, Is.Empty);
        var stats = pool.GetStatistics();
        Assert.That(stats.SocketCheckFailures, Is.EqualTo(4), "the socket check found every killed connection");
        Assert.That(stats.ValidationFailures, Is.Zero, "no ping was needed to find them");
    }

#if NET // The chaos proxy uses .NET Core socket APIs (see the project file).
    [Test]
    public void Connections_reset_by_a_proxy_right_after_use_are_found_by_their_socket()
    {
        using var proxy = new ChaosProxy(TestServer.Port);
        using var pool = CreatePool(o => o.KeepAliveInterval = TimeSpan.Zero, proxy.Port);
        var held = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList();
        held.ForEach(c => pool.Return(c));
        Settled(pool);

        proxy.ResetAll();
        Eventually(() => proxy.OpenFlows == 0, TimeSpan.FromSeconds(5), "the proxy reset every flow");
        var errors = Enumerable.Range(0, 3).Select(_ => Request(pool)).Where(e => e is not null).ToList();

        Assert.That(errors, Is.Empty);
        Assert.That(pool.GetStatistics().SocketCheckFailures, Is.EqualTo(3));
    }
#endif

    [Test]
    public void A_checkout_every_1_1_s_against_a_1_s_wait_timeout_never_fails()
    {
        using var _ = Admin.GlobalWaitTimeout(1);
        using var pool = CreatePool(o => o.KeepAliveInterval = TimeSpan.Zero); // the default window, no keepalive to hide it
        var errors = 0;
        for (var i = 0; i < 9; i++)
        {
            if (Request(pool) is not null)
                errors++;
            Elapse(TimeSpan.FromMilliseconds(1100));
        }

        Assert.That(errors, Is.Zero);
        Assert.That(pool.GetStatistics().SocketCheckFailures, Is.GreaterThanOrEqualTo(7), "the server closed each idle connection; the socket check saw it");
    }

    [Test]
    public void A_server_restart_while_the_pool_is_idle_is_invisible_to_callers()
    {
        using var pool = CreatePool();
        var held = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList();
        held.ForEach(c => pool.Return(c));
        Settled(pool);

        TestServer.Control("restart"); // right after use: inside the bypass window if the restart is quick
        var errors = Enumerable.Range(0, 6).Select(_ => Request(pool)).Where(e => e is not null).ToList();

        Assert.That(errors, Is.Empty);
        var stats = pool.GetStatistics();
        Assert.That(stats.SocketCheckFailures, Is.EqualTo(3), "each connection the restart closed was found by its socket");
        Assert.That(stats.Generation, Is.GreaterThanOrEqualTo(1));
    }
}
