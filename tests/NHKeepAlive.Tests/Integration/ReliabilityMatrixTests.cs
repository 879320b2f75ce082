using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// The pool's promises under the failures real networks and servers produce, each scenario bounded in
/// time and asserting what callers saw. Every scenario adds a row to the matrix printed at the end.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class ReliabilityMatrixTests(MySqlDriver driver) : IntegrationTest(driver)
{
    private static readonly ConcurrentQueue<string> s_rows = new();
    private static readonly TimeSpan s_validationTimeout = TimeSpan.FromSeconds(1);
    private const int ConnectTimeoutSeconds = 2;

    [OneTimeTearDown]
    public void PrintMatrix()
    {
        TestContext.Progress.WriteLine("| driver | scenario | what callers saw | worst wait | errors | rows lost |");
        TestContext.Progress.WriteLine("|---|---|---|---|---|---|");
        foreach (var row in s_rows.Where(r => r.StartsWith($"| {Driver} ", StringComparison.Ordinal)))
            TestContext.Progress.WriteLine(row);
    }

    private void Row(string scenario, string saw, TimeSpan worst, int errors, string rowsLost = "n/a") =>
        s_rows.Enqueue($"| {Driver} | {scenario} | {saw} | {worst.TotalMilliseconds:0} ms | {errors} | {rowsLost} |");

    private KeepAlivePool ProxiedPool(ChaosProxy proxy, Action<KeepAliveOptions>? configure = null, string? extra = null) =>
        new(new KeepAliveOptions
        {
            ConnectionString = TestServer.ConnectionString(Driver, proxy.Port, $"Connection Timeout={ConnectTimeoutSeconds}" + (extra is null ? string.Empty : ";" + extra)),
            Driver = Driver,
            ConnectionTimeout = TimeSpan.FromSeconds(5),
            ValidationTimeout = s_validationTimeout,
            ValidationBypassWindow = TimeSpan.FromMilliseconds(200),
            LoggerFactory = Log,
        }.Also(configure));

    private static (List<Exception?> Errors, TimeSpan Worst) Timed(Func<Exception?> request, int count, bool parallel = false)
    {
        var results = new ConcurrentBag<(Exception? Error, TimeSpan Took)>();
        void One()
        {
            var watch = Stopwatch.StartNew();
            var error = request();
            results.Add((error, watch.Elapsed));
        }

        if (parallel)
            Task.WaitAll(Enumerable.Range(0, count).Select(_ => Task.Run(One)).ToArray(), TimeSpan.FromSeconds(60));
        else
            for (var i = 0; i < count; i++)
                One();
        return (results.Select(r => r.Error).ToList(), results.IsEmpty ? TimeSpan.Zero : results.Max(r => r.Took));
    }

    [Test]
    public void A_NAT_idle_cut_shorter_than_wait_timeout_is_outrun_by_the_keepalive_with_no_error()
    {
        using var proxy = new ChaosProxy(TestServer.Port);
        proxy.CutIdleFlowsAfter(TimeSpan.FromSeconds(1.5), silently: true);
        using var pool = ProxiedPool(proxy, o => o.KeepAliveInterval = TimeSpan.FromMilliseconds(500));
        var held = Enumerable.Range(0, 4).Select(_ => pool.Rent()).ToList();
        held.ForEach(c => pool.Return(c));

        var errors = new List<Exception?>();
        var worst = TimeSpan.Zero;
        for (var round = 0; round < 3; round++)
        {
            Elapse(TimeSpan.FromSeconds(1.2)); // idle, but for the keepalive, for most of the NAT's timeout
            var (e, w) = Timed(() => Request(pool), 4, parallel: true);
            errors.AddRange(e.Where(x => x is not null));
            worst = w > worst ? w : worst;
        }

        var stats = pool.GetStatistics();
        if (errors.Count > 0)
        {
            foreach (var entry in Log.Entries)
                TestContext.Progress.WriteLine($"  log: {entry.Event.Name}: {entry.Message}");
        }

        Row("NAT cuts flows idle 1.5 s (silently); keepalive 0.5 s", $"{12 - errors.Count}/12 requests served; {stats.KeepAlivePings} keepalive pings, {stats.Evicted} connections lost, {stats.Created} opened", worst, errors.Count);
        Assert.That(errors, Is.Empty);
        Assert.That(stats.Evicted, Is.Zero, "no connection died behind the NAT (a checkout that races a keepalive ping may open one more)");
    }

    [TestCase(true, TestName = "A NAT idle cut without keepalive is absorbed by checkout validation (silent drop)")]
    [TestCase(false, TestName = "A NAT idle cut without keepalive is absorbed by checkout validation (reset)")]
    public void NatIdleCutWithoutKeepalive(bool silently)
    {
        using var proxy = new ChaosProxy(TestServer.Port);
        proxy.CutIdleFlowsAfter(TimeSpan.FromSeconds(1), silently);
        using var pool = ProxiedPool(proxy, o => o.KeepAliveInterval = TimeSpan.Zero);
        Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList().ForEach(c => pool.Return(c));
        Eventually(() => proxy.OpenFlows == 0 || silently, TimeSpan.FromSeconds(5), "the proxy reset the idle flows");
        Elapse(TimeSpan.FromSeconds(1.5));

        var (errors, worst) = Timed(() => Request(pool), 4);

        Row($"NAT cuts flows idle 1 s ({(silently ? "silent" : "reset")}); no keepalive", silently ? "validation timed out once, then a new connection" : "validation failed fast, new connection", worst, errors.Count(e => e is not null));
        Assert.That(errors, Has.All.Null);
        Assert.That(worst, Is.LessThan(s_validationTimeout + TimeSpan.FromSeconds(1)));
    }

    [Test]
    public void A_blackholed_path_costs_at_most_validation_plus_connect_timeout_and_heals_by_itself()
    {
        using var proxy = new ChaosProxy(TestServer.Port);
        using var pool = ProxiedPool(proxy, o => o.KeepAliveInterval = TimeSpan.Zero);
        Enumerable.Range(0, 2).Select(_ => pool.Rent()).ToList().ForEach(c => pool.Return(c));

        proxy.BlackholeEverything();
        Elapse(TimeSpan.FromMilliseconds(300));
        var (down, worstDown) = Timed(() => Request(pool), 2);
        proxy.Heal();
        var (up, worstUp) = Timed(() => Request(pool), 3);

        var saw = string.Join("; ", down.Where(e => e is not null).Select(e => e!.GetType().Name).Distinct());
        Row("blackhole of every flow, then healed", $"while down: {saw}; after: {up.Count(e => e is null)}/3 served", worstDown, down.Count(e => e is not null) + up.Count(e => e is not null));
        Assert.That(down, Has.All.InstanceOf<ConnectException>(), "a clear error while the path is dead");
        Assert.That(worstDown, Is.LessThan(s_validationTimeout + TimeSpan.FromSeconds(ConnectTimeoutSeconds) + TimeSpan.FromSeconds(1.5)));
        Assert.That(up, Has.All.Null, "service resumes when the path heals");
    }

    [Test]
    public void A_blackholed_connection_in_use_fails_within_the_command_timeout_and_is_evicted()
    {
        using var proxy = new ChaosProxy(TestServer.Port);
        using var pool = ProxiedPool(proxy, extra: "Default Command Timeout=2");
        var lease = pool.Lease();
        Scalar(lease.Connection, "SELECT 1");

        proxy.BlackholeExistingFlows();
        var watch = Stopwatch.StartNew();
        var error = Assert.Catch(() => Scalar(lease.Connection, "SELECT 1"))!;
        watch.Stop();
        lease.ReportFailure(error);
        lease.Dispose();

        Row("blackhole of a connection in use (command timeout 2 s)", InUseFaultTests.Describe(error), watch.Elapsed, 1);
        TestContext.Progress.WriteLine($"{Driver}: {InUseFaultTests.Describe(error)} after {watch.ElapsedMilliseconds} ms");
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2 + 4)));
        Assert.That(pool.GetStatistics().Total, Is.Zero, "the connection was evicted");
        Assert.That(Request(pool), Is.Null);
    }

    [Test]
    public void While_the_server_is_down_callers_get_a_clear_error_fast_and_recover_by_themselves()
    {
        using var pool = CreatePool(o => o.ValidationTimeout = s_validationTimeout);
        Enumerable.Range(0, 2).Select(_ => pool.Rent()).ToList().ForEach(c => pool.Return(c));

        TestServer.Control("down");
        List<Exception?> down;
        TimeSpan worst;
        try
        {
            Elapse(TimeSpan.FromMilliseconds(600));
            (down, worst) = Timed(() => Request(pool), 3);
        }
        finally
        {
            TestServer.Control("up");
        }

        var (up, _) = Timed(() => Request(pool), 3);
        Row("server down (refused), then up", $"{string.Join(", ", down.Select(e => e?.GetType().Name ?? "ok").Distinct())} while down; {up.Count(e => e is null)}/3 after", worst, down.Count(e => e is not null));
        Assert.That(down, Has.All.InstanceOf<ConnectException>());
        Assert.That(((ConnectException)down[0]!).Message, Does.Contain("server is running"));
        Assert.That(worst, Is.LessThan(TimeSpan.FromSeconds(3)), "refused connections fail at once, not after a timeout");
        Assert.That(up, Has.All.Null);
    }

    [Test]
    public void Refused_new_flows_give_clear_errors_and_service_resumes_when_they_pass_again()
    {
        using var proxy = new ChaosProxy(TestServer.Port);
        using var pool = ProxiedPool(proxy);
        proxy.RefuseNewFlows(true);
        var (refused, worst) = Timed(() => Request(pool), 3);
        proxy.RefuseNewFlows(false);
        var (after, _) = Timed(() => Request(pool), 3);

        Row("new connections refused, then allowed", $"{string.Join(", ", refused.Select(e => e?.GetType().Name ?? "ok").Distinct())}; then {after.Count(e => e is null)}/3", worst, refused.Count(e => e is not null));
        Assert.That(refused, Has.All.InstanceOf<ConnectException>());
        Assert.That(worst, Is.LessThan(TimeSpan.FromSeconds(ConnectTimeoutSeconds + 1)));
        Assert.That(after, Has.All.Null);
        Assert.That(proxy.Refused, Is.GreaterThanOrEqualTo(3));
    }

    [Test]
    public void A_kill_inside_a_transaction_reaches_the_caller_and_leaves_none_of_its_rows()
    {
        Admin.Execute("CREATE TABLE IF NOT EXISTS tx_rows (id INT PRIMARY KEY, tx VARCHAR(10)) ENGINE=InnoDB");
        Admin.Execute("DELETE FROM tx_rows");
        using var pool = CreatePool();

        // One transaction that commits: all its rows.
        using (var lease = pool.Lease())
        using (var tx = lease.Connection.BeginTransaction())
        {
            for (var i = 1; i <= 3; i++)
                Scalar(lease.Connection, $"INSERT INTO tx_rows VALUES ({i}, 'ok')", tx);
            tx.Commit();
        }

        // One killed after two of its three inserts: none of its rows, and the caller is told.
        Exception? error = null;
        var watch = Stopwatch.StartNew();
        using (var lease = pool.Lease())
        {
            var id = ConnectionId(lease.Connection);
            var tx = lease.Connection.BeginTransaction();
            try
            {
                Scalar(lease.Connection, "INSERT INTO tx_rows VALUES (11, 'killed')", tx);
                Scalar(lease.Connection, "INSERT INTO tx_rows VALUES (12, 'killed')", tx);
                Admin.Kill(id);
                Scalar(lease.Connection, "INSERT INTO tx_rows VALUES (13, 'killed')", tx);
                tx.Commit();
            }
            catch (Exception e)
            {
                error = e;
                lease.ReportFailure(e);
            }
        }

        watch.Stop();
        var committed = Admin.Count("SELECT COUNT(*) FROM tx_rows WHERE tx = 'ok'");
        var killed = Admin.Count("SELECT COUNT(*) FROM tx_rows WHERE tx = 'killed'");
        Row("KILL inside an open transaction", error is null ? "no error (wrong)" : InUseFaultTests.Describe(error), watch.Elapsed, error is null ? 0 : 1, (3 - committed).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(error, Is.Not.Null, "the caller sees the failure; nothing is retried silently");
        Assert.That((committed, killed), Is.EqualTo((3L, 0L)), "all of the committed transaction, none of the killed one");
        Assert.That(pool.GetStatistics().Evicted, Is.EqualTo(1));
    }

    [Test]
    public void Reaching_the_server_max_connections_makes_callers_wait_then_gives_a_clear_timeout_and_no_stuck_waiter()
    {
        Admin.Execute("CREATE USER IF NOT EXISTS 'nhk_plain'@'127.0.0.1' IDENTIFIED BY 'plain-pw'");
        Admin.Execute($"GRANT SELECT ON {TestServer.Database}.* TO 'nhk_plain'@'127.0.0.1'");
        var before = Admin.Count("SELECT @@GLOBAL.max_connections");
        var connected = Admin.Count("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'THREADS_CONNECTED'");
        Admin.Execute("SET GLOBAL max_connections = 10"); // MariaDB's minimum
        Assert.That(connected, Is.LessThan(10), "room for a few of the pool's connections");
        try
        {
            var cs = TestServer.ConnectionString(Driver).Replace($"User ID={TestServer.User};Password={TestServer.Password}", "User ID=nhk_plain;Password=plain-pw", StringComparison.Ordinal);
            using var pool = new KeepAlivePool(new KeepAliveOptions { ConnectionString = cs, Driver = Driver, MaxPoolSize = 12, ConnectionTimeout = TimeSpan.FromSeconds(3), ValidationTimeout = TimeSpan.FromSeconds(1) });
            var leases = new ConcurrentBag<System.Data.Common.DbConnection>();
            var (errors, worst) = Timed(() =>
            {
                try
                {
                    leases.Add(pool.Rent());
                    return null;
                }
                catch (Exception e)
                {
                    return e;
                }
            }, 12, parallel: true);
            var refused = errors.Where(e => e is not null).ToList();
            foreach (var c in leases)
                pool.Return(c);

            Row("server max_connections (10) reached: 12 callers, pool max 12", $"{leases.Count} connected, {refused.Count} got {string.Join(", ", refused.Select(e => e!.GetType().Name).Distinct())}", worst, refused.Count);

            // Nobody gave a connection back: the callers the server had no room for waited the connection
            // timeout for one, then got a timeout that names the server's limit (issue 22), not a connect error.
            Assert.That(refused, Is.Not.Empty);
            Assert.That(refused, Has.All.InstanceOf<PoolTimeoutException>());
            Assert.That(refused[0]!.Message, Does.Contain("Too many connections").And.Contain("server refuses new connections"));
            Assert.That(worst, Is.LessThan(TimeSpan.FromSeconds(3) + TimeSpan.FromSeconds(2)), "bounded by the connection timeout");
            Assert.That(pool.GetStatistics().RefusedConnects, Is.GreaterThan(0));
            Assert.That(pool.GetStatistics().Pending, Is.Zero, "no caller is left waiting");
        }
        finally
        {
            Admin.Execute($"SET GLOBAL max_connections = {before}");
        }
    }

    [Test]
    public void Reaching_the_pool_max_size_gives_a_timeout_that_tells_the_pool_state_and_no_stuck_waiter()
    {
        using var pool = CreatePool(o => { o.MaxPoolSize = 2; o.ConnectionTimeout = TimeSpan.FromSeconds(1); o.ValidationTimeout = TimeSpan.FromMilliseconds(500); });
        var a = pool.Rent();
        var b = pool.Rent();
        var (errors, worst) = Timed(() => Request(pool), 3, parallel: true);
        pool.Return(a);
        pool.Return(b);

        Row("pool max size reached (2 held, 3 more callers)", $"{errors.Count(e => e is PoolTimeoutException)} PoolTimeoutException: \"{(errors.FirstOrDefault(e => e is not null)?.Message ?? string.Empty).Split('(', ')')[1]}\"", worst, errors.Count(e => e is not null));
        Assert.That(errors, Has.All.InstanceOf<PoolTimeoutException>());
        Assert.That(worst, Is.LessThan(TimeSpan.FromSeconds(2.5)));
        Assert.That(pool.GetStatistics().Pending, Is.Zero);
        Assert.That(Request(pool), Is.Null);
    }

    [Test]
    public void Soak_under_random_faults_loses_and_repeats_no_acknowledged_write_and_leaks_nothing()
    {
        Admin.Execute("CREATE TABLE IF NOT EXISTS soak (id BIGINT PRIMARY KEY, writer INT) ENGINE=InnoDB");
        Admin.Execute("DELETE FROM soak");
        var unobserved = 0;
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, _) => Interlocked.Increment(ref unobserved);
        TaskScheduler.UnobservedTaskException += onUnobserved;
        using var proxy = new ChaosProxy(TestServer.Port);
        using var pool = ProxiedPool(proxy, o =>
        {
            o.MaxPoolSize = 12;
            o.KeepAliveInterval = TimeSpan.FromMilliseconds(500);
            o.ConnectionTimeout = TimeSpan.FromSeconds(10);
        });
        var acknowledged = new ConcurrentBag<long>();
        var failed = 0;
        long nextId = 0;
        var duration = TimeSpan.FromSeconds(8);
        var random = new Random(20261125);
        var faults = new List<string>();
        var clock = Stopwatch.StartNew();
        var worst = TimeSpan.Zero;
        var worstLock = new object();

        var writers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            var iterations = 0;
            while (clock.Elapsed < duration && iterations++ < 50_000)
            {
                var id = Interlocked.Increment(ref nextId);
                var watch = Stopwatch.StartNew();
                try
                {
                    using var lease = w % 2 == 0 ? await pool.LeaseAsync() : pool.Lease();
                    try
                    {
                        using var command = lease.Connection.CreateCommand();
                        command.CommandText = $"INSERT INTO soak VALUES ({id}, {w})";
                        if (w % 2 == 0)
                            await command.ExecuteNonQueryAsync();
                        else
                            command.ExecuteNonQuery();
                        acknowledged.Add(id);
                    }
                    catch (Exception e)
                    {
                        lease.ReportFailure(e);
                        throw;
                    }
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref failed);
                }

                lock (worstLock)
                    worst = watch.Elapsed > worst ? watch.Elapsed : worst;
            }
        })).ToArray();

        var restarted = false;
        while (clock.Elapsed < duration)
        {
            Elapse(TimeSpan.FromMilliseconds(300 + random.Next(500)));
            switch (random.Next(restarted ? 2 : 3))
            {
                case 0:
                    var ids = Admin.ConnectionIds();
                    if (ids.Count > 0)
                        Admin.Kill(ids[random.Next(ids.Count)]);
                    faults.Add("kill");
                    break;
                case 1:
                    proxy.ResetAll();
                    faults.Add("reset");
                    break;
                default:
                    TestServer.Control("restart");
                    restarted = true;
                    faults.Add("restart");
                    break;
            }
        }

        Assert.That(Task.WaitAll(writers, TimeSpan.FromSeconds(60)), Is.True, "every writer finished");
        var stored = new HashSet<long>();
        var duplicates = Admin.Count("SELECT COUNT(*) - COUNT(DISTINCT id) FROM soak");
        foreach (var id in Admin.ConnectionIdsOf("SELECT id FROM soak"))
            stored.Add(id);
        var lost = acknowledged.Count(id => !stored.Contains(id));

        // No leak: once the pool is quiet, the server sees exactly the pool's connections.
        Eventually(() => Admin.ConnectionIds().Count == pool.GetStatistics().Total, TimeSpan.FromSeconds(10), "the server's connections match the pool's");
        GC.Collect();
        GC.WaitForPendingFinalizers();
        TaskScheduler.UnobservedTaskException -= onUnobserved;

        var stats = pool.GetStatistics();
        Row($"soak: 16 writers, 8 s, faults {string.Join(",", faults.GroupBy(f => f).Select(g => $"{g.Key}×{g.Count()}"))}",
            $"{acknowledged.Count} writes acknowledged, {failed} failed (callers saw the error); {stats.Evicted} evictions; server connections = pool's {stats.Total}",
            worst, failed, lost.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(lost, Is.Zero, "every acknowledged write is in the database");
        Assert.That(duplicates, Is.Zero, "none is there twice");
        Assert.That(stats.Active, Is.Zero);
        Assert.That(unobserved, Is.Zero, "no background exception went unobserved");
        Assert.That(Log.Has("HousekeepingFailed"), Is.False);
        Assert.That(acknowledged.Count, Is.GreaterThan(100));
    }

    [Test]
    public void Bad_input_fails_fast_and_leaves_no_timer_behind()
    {
        var time = new CountingTimeProvider();
        var cases = new (string What, Action Act)[]
        {
            ("malformed connection string", () => new KeepAlivePool(new KeepAliveOptions { ConnectionString = "Server=127.0.0.1;Port=;;=x", Driver = Driver, TimeProvider = time }).Dispose()),
            ("malformed option", () => new KeepAlivePool(new KeepAliveOptions { ConnectionString = TestServer.ConnectionString(Driver), Driver = Driver, MaxPoolSize = -1, TimeProvider = time }).Dispose()),
            ("wrong credentials", () => Open(TestServer.ConnectionString(Driver).Replace(TestServer.Password, "nope", StringComparison.Ordinal), time)),
            ("port with no server", () => Open(TestServer.ConnectionString(Driver, FreePort()), time)),
        };
        foreach (var (what, act) in cases)
        {
            var watch = Stopwatch.StartNew();
            var error = Assert.Catch(() => act())!;
            Row($"bad input: {what}", $"{error.GetType().Name}: {error.Message.Split('.')[0]}", watch.Elapsed, 1);
            Assert.That(error, Is.InstanceOf<KeepAliveConfigurationException>().Or.InstanceOf<ConnectException>(), what);
            Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)), what);
        }

        Assert.That(time.LiveTimers, Is.Zero, "every pool's timer was disposed");
    }

    private void Open(string connectionString, TimeProvider time)
    {
        using var pool = new KeepAlivePool(new KeepAliveOptions { ConnectionString = connectionString, Driver = Driver, TimeProvider = time });
        pool.Return(pool.Rent());
    }

    private static int FreePort()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        return ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
    }
}

internal static class OptionsExtensions
{
    public static KeepAliveOptions Also(this KeepAliveOptions options, Action<KeepAliveOptions>? configure)
    {
        configure?.Invoke(options);
        return options;
    }
}
