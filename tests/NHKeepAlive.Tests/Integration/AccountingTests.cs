using System;
using System.Collections.Generic;
using System.Data.Common;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>Every physical connection accounted for, against the real server, on every exit path.</summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class AccountingTests(MySqlDriver driver) : IntegrationTest(driver)
{
#if NET // The chaos proxy uses .NET Core socket APIs (see the project file).
    [Test]
    public async Task A_checkout_cancelled_during_a_slow_connect_returns_at_once_and_its_connection_is_not_leaked()
    {
        using var proxy = new ChaosProxy(TestServer.Port) { Latency = TimeSpan.FromMilliseconds(250) };
        var pool = CreatePool(o => o.KeepAliveInterval = TimeSpan.Zero, proxy.Port);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        var watch = Stopwatch.StartNew();
        Assert.That(async () => await pool.RentAsync(cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromMilliseconds(200 + 300)), "the caller is back within moments of its cancel");

        // An opened connection passes from Opening to Checking on its way out: wait until neither holds it.
        Eventually(() => pool.GetStatistics() is { Opening: 0, Checking: 0 }, TimeSpan.FromSeconds(15), "the connect and its hand-off finished");
        Assert.That(pool.GetStatistics().Idle, Is.EqualTo(1), "what it produced went idle");
        Assert.That(Admin.ConnectionIds(), Has.Count.EqualTo(1));
        pool.Dispose();
        Eventually(() => Admin.ConnectionIds().Count == 0, TimeSpan.FromSeconds(5), "disposed: nothing left on the server, without a garbage collection");
        await Task.CompletedTask;
    }
#endif

    [Test]
    public void Pools_disposed_during_their_first_minimum_idle_refill_leave_nothing_open()
    {
        var threadsBefore = KeepAlivePool.LiveHousekeepers;
        var pools = Enumerable.Range(0, 40).Select(_ => CreatePool(o => o.MinIdle = 1)).ToList();
        pools.ForEach(p => p.Dispose());

        Eventually(() => Admin.ConnectionIds().Count == 0, TimeSpan.FromSeconds(10), "every connection the refills opened was closed");
        Assert.That(pools.Sum(p => p.GetStatistics().Total), Is.Zero);
        Eventually(() => KeepAlivePool.LiveHousekeepers == threadsBefore, TimeSpan.FromSeconds(5), "no housekeeping thread outlives its pool");
    }

    [Test]
    public void The_minimum_idle_is_open_right_after_the_pool_is_built()
    {
        using var pool = CreatePool(o => o.MinIdle = 3);

        Eventually(() => pool.GetStatistics().Idle == 3, TimeSpan.FromSeconds(5), "three idle connections without a checkout");
        Assert.That(Admin.ConnectionIds(), Has.Count.EqualTo(3));
    }

    [Test]
    public void Connections_on_loan_at_dispose_are_closed_after_the_grace_period()
    {
        var pool = CreatePool(o => o.ShutdownGracePeriod = TimeSpan.FromMilliseconds(300));
        var held = new[] { pool.Rent(), pool.Rent() };
        pool.Return(pool.Rent());

        var watch = Stopwatch.StartNew();
        pool.Dispose();

        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)));
        Eventually(() => Admin.ConnectionIds().Count == 0, TimeSpan.FromSeconds(5), "the connections still on loan were closed too");
        Assert.That(Log.Messages("ClosedAtShutdown").Length, Is.EqualTo(2));
        Assert.That(() => pool.Return(held[0]), Throws.Nothing);
    }

    [Test]
    public void No_connection_handed_out_shows_the_password_not_even_after_a_failed_reopen()
    {
        if (!TestServer.CanControl)
            Assert.Ignore("needs the throwaway server (build/test.sh) to stop and start it");
        using var pool = CreatePool(o => o.KeepAliveInterval = TimeSpan.Zero);
        var held = pool.Rent();
        Assert.That(held.ConnectionString, Does.Not.Contain(TestServer.Password), "open");
        Assert.That(held.State, Is.EqualTo(System.Data.ConnectionState.Open));

        TestServer.Control("down");
        try
        {
            var error = Assert.Catch(() => pool.EnsureAlive(held, inTransaction: false))!;
            Assert.That(error, Is.TypeOf<ConnectException>());
            Assert.That(error.ToString(), Does.Not.Contain(TestServer.Password));
            Assert.That(held.ConnectionString, Does.Not.Contain(TestServer.Password), "after the reopen failed");
        }
        finally
        {
            TestServer.Control("up");
        }

        Assert.That(pool.EnsureAlive(held, inTransaction: false), Is.True, "reopened once the server is back");
        Assert.That(held.ConnectionString, Does.Not.Contain(TestServer.Password), "after the reopen");
        Assert.That(pool.Name + pool.GetStatistics().ToString(), Does.Not.Contain(TestServer.Password));
        pool.Return(held);
    }

    [Test]
    public void A_starved_thread_pool_neither_aborts_healthy_connections_nor_lets_the_server_drop_idle_ones()
    {
        using var waitTimeout = Admin.GlobalWaitTimeout(3); // the keepalive pings every 1.5 s
        using var pool = CreatePool(o => o.ValidationTimeout = TimeSpan.FromSeconds(1));
        var held = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList();
        var ids = held.Select(ConnectionId).ToList();
        held.ForEach(c => pool.Return(c));
        var pingsBefore = pool.GetStatistics().KeepAlivePings;

        // Block far more thread-pool work than it has threads, for three wait_timeouts.
        ThreadPool.GetMinThreads(out var minimum, out _);
        using var release = new ManualResetEventSlim(false);
        var blocked = Enumerable.Range(0, minimum * 4).Select(_ => Task.Run(() => release.Wait(TimeSpan.FromSeconds(30)))).ToArray();
        try
        {
            Elapse(TimeSpan.FromSeconds(9));
            Assert.That(Admin.ConnectionIds(), Is.SupersetOf(ids), "the server kept every idle connection");
        }
        finally
        {
            release.Set();
            Task.WaitAll(blocked, TimeSpan.FromSeconds(30));
        }

        var stats = pool.GetStatistics();
        Assert.That(stats.Evicted, Is.Zero, "no healthy connection aborted");
        Assert.That(stats.KeepAlivePings - pingsBefore, Is.GreaterThanOrEqualTo(3 * 5), "the keepalive kept its schedule (every 1.5 s) throughout");
    }

    [Test]
    public void Random_options_and_connection_strings_are_accepted_and_work_or_are_refused_at_build_time_leaving_nothing_behind()
    {
        var threadsBefore = KeepAlivePool.LiveHousekeepers;
        var random = new Random(20261127);
        T Pick<T>(T usual, T[] any) => random.Next(4) == 0 ? any[random.Next(any.Length)] : usual;
        string[] extras = ["Connection Timeout=3", "Default Command Timeout=5", "Frobnicate=1", "Port=notanumber", "Connection Timeout=-4", "Database=nhk_no_such_db", "Keepalive=5", "Pooling=true", "Connection Lifetime=1", "Max Pool Size=7", "Allow User Variables=true", "Connection Timeout=99999999999", string.Empty];
        TimeSpan[] spans = [TimeSpan.Zero, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(20), TimeSpan.FromMinutes(10), TimeSpan.FromDays(3), TimeSpan.FromDays(30), TimeSpan.MaxValue, TimeSpan.FromTicks(-1)];
        int[] sizes = [-1, 0, 1, 2, 5, 100, 20_000, int.MaxValue];
        int accepted = 0, refused = 0, failedToConnect = 0;
        for (var i = 0; i < 300; i++)
        {
            var options = new KeepAliveOptions
            {
                ConnectionString = TestServer.ConnectionString(Driver, extra: Pick(string.Empty, extras)),
                Driver = Driver,
                LoggerFactory = Log,
                MaxPoolSize = Pick(10, sizes),
                MinIdle = Pick(0, sizes),
                ConnectionTimeout = Pick(TimeSpan.FromSeconds(10), spans),
                ValidationTimeout = Pick(TimeSpan.FromSeconds(2), spans),
                ValidationBypassWindow = Pick(TimeSpan.FromMilliseconds(500), spans),
                MaxLifetime = Pick(TimeSpan.FromMinutes(30), spans),
                IdleTimeout = Pick(TimeSpan.FromMinutes(10), spans),
                KeepAliveInterval = Pick(TimeSpan.FromMinutes(2), spans),
                LeakDetectionThreshold = Pick(TimeSpan.Zero, spans),
                ShutdownGracePeriod = Pick(TimeSpan.Zero, spans),
                SessionReset = (SessionResetPolicy)Pick(0, [0, 1, 2, 3, -1]),
                SocketCheck = random.Next(2) == 0,
            };
            KeepAlivePool pool;
            try
            {
                pool = new KeepAlivePool(options);
            }
            catch (KeepAliveConfigurationException e)
            {
                Assert.That(e.Message, Does.Contain("nhkeepalive.").Or.Contain("option '").Or.Contain("connection string"), $"case {i}: says what to fix");
                Assert.That(e.Message, Does.Not.Contain(TestServer.Password));
                refused++;
                continue;
            }

            try
            {
                using (var lease = pool.Lease())
                    Scalar(lease.Connection, "SELECT 1");
                accepted++;
            }
            catch (ConnectException e)
            {
                Assert.That(e.Message, Does.Not.Contain(TestServer.Password));
                failedToConnect++; // a database that does not exist: only the server can tell
            }
            catch (PoolTimeoutException)
            {
                failedToConnect++; // MinIdle refills racing a one-connection pool with a tiny timeout
            }
            finally
            {
                pool.Dispose();
            }
        }

        TestContext.Out.WriteLine($"accepted and worked {accepted}, refused at build {refused}, could not connect {failedToConnect}");
        Assert.That(accepted, Is.GreaterThan(5));
        Assert.That(refused, Is.GreaterThan(5));
        Eventually(() => Admin.ConnectionIds().Count == 0, TimeSpan.FromSeconds(10), "no server connection left behind");
        Eventually(() => KeepAlivePool.LiveHousekeepers == threadsBefore, TimeSpan.FromSeconds(10), "no housekeeping thread left behind");
    }
}
