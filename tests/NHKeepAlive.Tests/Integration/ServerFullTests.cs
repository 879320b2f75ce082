using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// Issue 22: a server that refuses new connections for a connection limit (an account's
/// MAX_USER_CONNECTIONS, 1226; the global max_connections, 1040) makes callers wait for a connection that
/// comes back, not fail, and the pool knocks on the full server a few times a second at most.
/// </summary>
/// <remarks>
/// The pools here log in as a throwaway account without SUPER (SUPER has a connection of its own above
/// max_connections), so they are built here rather than with <see cref="IntegrationTest.CreatePool"/>, whose
/// accounting counts the test user's connections; each test checks its own pool against the server instead.
/// </remarks>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class ServerFullTests(MySqlDriver driver) : IntegrationTest(driver)
{
    private const string FullUser = "nhk_full";
    private const string FullPassword = "Full-Secret-pw-4417";
    private static readonly TimeSpan s_connectionTimeout = TimeSpan.FromSeconds(5);

    [Test]
    public void An_account_limited_to_4_connections_serves_16_threads_without_errors_and_the_ceiling_lifts_when_the_limit_is_raised()
    {
        using var user = FullUserScope(maxUserConnections: 4);
        var pool = CreateFullPool(s_connectionTimeout);
        try
        {
            var full = Load(pool, threads: 16, TimeSpan.FromSeconds(3));
            Report("MAX_USER_CONNECTIONS 4", full);
            Assert.That(full.Errors, Is.Zero, full.FirstError?.ToString());
            Assert.That(full.Operations, Is.GreaterThan(100), "the 4 connections the server allows were used");
            Assert.That(full.Worst, Is.LessThan(s_connectionTimeout), "the worst checkout");
            Assert.That(full.RefusedPerSecond, Is.LessThanOrEqualTo(20), "refused connects per second");
            Assert.That(full.Refused, Is.GreaterThan(0), "the pool met the limit");
            Assert.That(full.MaxLive, Is.LessThanOrEqualTo(4), "the server's live connections of the account");
            Assert.That(full.MaxHeld, Is.LessThanOrEqualTo(4), "the connections the pool held");
            Assert.That(Log.Messages("ServerFull"), Has.Length.EqualTo(1).And.Some.Contains("max_user_connections"), "said once, in the server's words");
            Assert.That(Log.Has("ServerFullLifted"), Is.False);

            // The limit is raised: the next backed-off attempt succeeds, and the pool opens more.
            Admin.Execute($"ALTER USER '{FullUser}'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 8");
            var raised = Load(pool, threads: 16, TimeSpan.FromSeconds(2.5));
            Report("raised to 8", raised);
            Assert.That(raised.Errors, Is.Zero, raised.FirstError?.ToString());
            Assert.That(raised.MaxLive, Is.InRange(5, 8), "the pool opened more than the old ceiling, up to the new limit");
            Assert.That(Log.Has("ServerFullLifted"), Is.True, "the lift is logged");
            Assert.That(raised.RefusedPerSecond, Is.LessThanOrEqualTo(20), "refused connects per second");

            // No limit the pool can reach: once lifted, nothing is refused any more.
            Admin.Execute($"ALTER USER '{FullUser}'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 100");
            var lifting = Load(pool, threads: 16, TimeSpan.FromSeconds(1.5));
            var free = Load(pool, threads: 16, TimeSpan.FromSeconds(1.5));
            Report("raised to 100 (first 1.5 s)", lifting);
            Report("raised to 100 (next 1.5 s)", free);
            Assert.That(lifting.Errors + free.Errors, Is.Zero, (lifting.FirstError ?? free.FirstError)?.ToString());
            Assert.That(free.Refused, Is.Zero, "RefusedConnects stops growing once the ceiling lifted");
            Assert.That(pool.GetStatistics().Timeouts, Is.Zero);

            AssertAccounting(pool);
        }
        finally
        {
            pool.Dispose();
        }
    }

    [Test]
    public void A_caller_that_waits_past_the_connection_timeout_on_a_full_server_is_told_the_servers_words_and_no_password()
    {
        using var user = FullUserScope(maxUserConnections: 2);
        var timeout = TimeSpan.FromSeconds(1);
        var pool = CreateFullPool(timeout);
        try
        {
            var first = pool.Rent();
            var second = pool.Rent();

            var watch = Stopwatch.StartNew();
            var error = Assert.Throws<PoolTimeoutException>(() => pool.Rent())!;
            watch.Stop();
            TestContext.Progress.WriteLine($"{Driver}, full server past the connection timeout after {watch.Elapsed.TotalMilliseconds:F0} ms: {error.Message}");
            Assert.That(watch.Elapsed, Is.GreaterThanOrEqualTo(timeout - TimeSpan.FromMilliseconds(50)).And.LessThan(timeout + TimeSpan.FromSeconds(2)));
            Assert.That(error.Message, Does.Contain("max_user_connections"), "the server's words");
            Assert.That(error.Message, Does.Not.Contain(FullPassword));
            Assert.That(error.Statistics, Is.Not.Null);
            Assert.That(Log.Messages("ServerFull").Concat(Log.Messages("PoolTimeout")), Has.None.Contains(FullPassword));

            // A connection given back goes to the caller waiting for it.
            var firstId = ConnectionId(first);
            Exception? waiterError = null;
            long waiterId = 0;
            var waiter = new Thread(() =>
            {
                try
                {
                    using var c = pool.Rent();
                    waiterId = ConnectionId(c);
                }
                catch (Exception e)
                {
                    waiterError = e;
                }
            })
            { IsBackground = true };
            waiter.Start();
            Thread.Sleep(300);
            pool.Return(first);
            Assert.That(waiter.Join(TimeSpan.FromSeconds(5)), Is.True, "the waiter finished");
            Assert.That(waiterError, Is.Null, waiterError?.ToString());
            Assert.That(waiterId, Is.EqualTo(firstId), "the waiter got the connection that came back");
            pool.Return(second);
            AssertAccounting(pool);
        }
        finally
        {
            pool.Dispose();
        }
    }

    [Test]
    public void The_global_max_connections_reached_by_other_clients_makes_callers_wait_not_fail()
    {
        using var user = FullUserScope(maxUserConnections: 0);
        var before = Admin.Count("SELECT @@GLOBAL.max_connections");
        var fillers = new List<MySqlConnector.MySqlConnection>();
        KeepAlivePool? pool = null;
        try
        {
            // The admin connection stays open throughout (it has SUPER, and one more connection above the limit).
            Admin.Execute("SET GLOBAL max_connections = 10"); // MariaDB's minimum
            const int room = 4;
            while (ThreadsConnected() < 10 - room && fillers.Count < 10)
            {
                var filler = new MySqlConnector.MySqlConnection(TestServer.ConnectionString(MySqlDriver.MySqlConnector, extra: "Pooling=false"));
                filler.Open();
                fillers.Add(filler);
            }

            var others = ThreadsConnected();
            Assert.That(others, Is.EqualTo(10 - room), "other clients hold all but 4 of max_connections");

            pool = CreateFullPool(s_connectionTimeout);
            var run = Load(pool, threads: 16, TimeSpan.FromSeconds(3));
            Report($"max_connections 10, {others} held by others", run);
            Assert.That(run.Errors, Is.Zero, run.FirstError?.ToString());
            Assert.That(run.Operations, Is.GreaterThan(50));
            Assert.That(run.Worst, Is.LessThan(s_connectionTimeout), "the worst checkout");
            Assert.That(run.Refused, Is.GreaterThan(0), "the pool met the limit");
            Assert.That(run.RefusedPerSecond, Is.LessThanOrEqualTo(20), "refused connects per second");
            Assert.That(run.MaxLive, Is.LessThanOrEqualTo(room + 1), "what the server let in");
            Assert.That(Log.Messages("ServerFull"), Has.Some.Contains("Too many connections"), "the server's words");
            AssertAccounting(pool);
        }
        finally
        {
            pool?.Dispose();
            foreach (var filler in fillers)
                filler.Dispose();
            Admin.Execute($"SET GLOBAL max_connections = {before.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    /// <summary>
    /// A restart under 32 callers, 16 of them waiting for a slot at any moment: while the server is down they
    /// get its refusal (fast, as <see cref="ReliabilityMatrixTests"/> shows) and try again as an application
    /// would; when it is back, the pool opens at most <see cref="KeepAlivePool.MaxConnectsInFlight"/> connections
    /// at once, not one per caller, and no operation begun after the server is back fails.
    /// </summary>
    [Test]
    public void A_restart_under_32_callers_costs_no_error_once_the_server_is_back_and_the_pool_connects_a_few_at_a_time()
    {
        using var pool = CreatePool(o =>
        {
            o.MaxPoolSize = 16;
            o.ConnectionTimeout = s_connectionTimeout;
            o.ValidationTimeout = TimeSpan.FromMilliseconds(900);
        });
        var watch = Stopwatch.StartNew();
        long restartEnded = long.MaxValue, stop = long.MaxValue;
        var errorsAfter = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var servedAfter = new int[32];
        long errorsDuring = 0, operations = 0;
        var workers = Enumerable.Range(0, 32).Select(i => new Thread(() =>
        {
            while (watch.ElapsedTicks < Interlocked.Read(ref stop))
            {
                var begun = watch.ElapsedTicks;
                try
                {
                    using var lease = pool.Lease();
                    try
                    {
                        Scalar(lease.Connection, "SELECT SLEEP(0.02)");
                    }
                    catch (Exception e)
                    {
                        lease.ReportFailure(e);
                        throw;
                    }

                    Interlocked.Increment(ref operations);
                    if (begun > Interlocked.Read(ref restartEnded))
                        Interlocked.Increment(ref servedAfter[i]);
                }
                catch (Exception e)
                {
                    if (begun > Interlocked.Read(ref restartEnded))
                        errorsAfter.Enqueue(e);
                    else
                        Interlocked.Increment(ref errorsDuring);
                    Thread.Sleep(20); // The application's own pause before it tries again.
                }
            }
        })
        { IsBackground = true }).ToList();

        // Samples how many connects the pool has in flight, as often as it can, until the run ends.
        var peakOpening = 0;
        var sampler = new Thread(() =>
        {
            while (watch.ElapsedTicks < Interlocked.Read(ref stop))
            {
                peakOpening = Math.Max(peakOpening, pool.GetStatistics().Opening);
                Thread.Sleep(1);
            }
        })
        { IsBackground = true };

        workers.ForEach(w => w.Start());
        sampler.Start();
        Eventually(() => Interlocked.Read(ref operations) > 100, TimeSpan.FromSeconds(10), "the callers are served before the restart");
        var createdBefore = pool.GetStatistics().Created;
        var restartWatch = Stopwatch.StartNew();
        TestServer.Control("restart");
        restartWatch.Stop();
        Interlocked.Exchange(ref restartEnded, watch.ElapsedTicks);
        Eventually(() => servedAfter.All(n => n > 0), TimeSpan.FromSeconds(10), "every caller served again once the server is back");
        var backIn = watch.Elapsed - TimeSpan.FromTicks((long)(Interlocked.Read(ref restartEnded) * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency));
        Thread.Sleep(500); // Half a second more of load on the restarted server.
        Interlocked.Exchange(ref stop, watch.ElapsedTicks);
        Assert.That(workers.All(w => w.Join(TimeSpan.FromSeconds(10))) && sampler.Join(TimeSpan.FromSeconds(5)), Is.True, "every caller stopped");

        var stats = pool.GetStatistics();
        TestContext.Progress.WriteLine(
            $"{Driver}, restart under 32 callers (pool of 16): restart took {restartWatch.ElapsedMilliseconds} ms, {errorsDuring} errors while it ran, " +
            $"{errorsAfter.Count} after; every caller served again {backIn.TotalMilliseconds:F0} ms after; {stats.Created - createdBefore} connections opened again, at most {peakOpening} at once; {operations} operations");
        Assert.That(errorsAfter, Is.Empty, errorsAfter.IsEmpty ? string.Empty : InUseFaultTests.Describe(errorsAfter.First()));
        Assert.That(peakOpening, Is.InRange(1, KeepAlivePool.MaxConnectsInFlight), "connects in flight at once: bounded, not one per waiting caller");
        Assert.That(stats.Total, Is.LessThanOrEqualTo(16), "within the pool's maximum");
        Assert.That(stats.Active, Is.Zero);
    }

    private long ThreadsConnected() =>
        Admin.Count("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'THREADS_CONNECTED'");

    private KeepAlivePool CreateFullPool(TimeSpan connectionTimeout)
    {
        var cs = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = TestServer.ConnectionString(Driver) };
        cs["User ID"] = FullUser;
        cs["Password"] = FullPassword;
        return new KeepAlivePool(new KeepAliveOptions
        {
            ConnectionString = cs.ConnectionString,
            Driver = Driver,
            MaxPoolSize = 16,
            ConnectionTimeout = connectionTimeout,
            ValidationTimeout = TimeSpan.FromMilliseconds(900),
            ShutdownGracePeriod = TimeSpan.Zero,
            LoggerFactory = Log,
        });
    }

    /// <summary>The account's established connections on the server equal the pool's accounting; none are left once it is disposed.</summary>
    private void AssertAccounting(KeepAlivePool pool)
    {
        Eventually(() => FullConnections().Count == pool.GetStatistics().Total, TimeSpan.FromSeconds(10), "the server's connections of the account equal the pool's accounting");
        pool.Dispose();
        Eventually(() => FullConnections().Count == 0, TimeSpan.FromSeconds(10), "the disposed pool left no connection on the server");
    }

    /// <summary>The account's connections past the login (a connect the server is refusing shows as Connect for a moment).</summary>
    private IReadOnlyList<long> FullConnections() =>
        Admin.ConnectionIdsOf($"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{FullUser}' AND COMMAND <> 'Connect'");

    /// <summary>The throwaway account (no SUPER), with a connection limit; killed and dropped at the end.</summary>
    private Scope FullUserScope(int maxUserConnections)
    {
        Admin.Execute($"DROP USER IF EXISTS '{FullUser}'@'127.0.0.1'");
        Admin.Execute($"CREATE USER '{FullUser}'@'127.0.0.1' IDENTIFIED BY '{FullPassword}' WITH MAX_USER_CONNECTIONS {maxUserConnections.ToString(CultureInfo.InvariantCulture)}");
        Admin.Execute($"GRANT SELECT ON `{TestServer.Database}`.* TO '{FullUser}'@'127.0.0.1'");
        return new Scope(() =>
        {
            Admin.KillAll(Admin.ConnectionIdsOf($"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{FullUser}'"));
            Admin.Execute($"DROP USER IF EXISTS '{FullUser}'@'127.0.0.1'");
        });
    }

    /// <summary>
    /// <paramref name="threads"/> threads rent, run <c>SELECT SLEEP(0.05)</c> and return for <paramref name="span"/>,
    /// while this thread samples the account's live connections on the server.
    /// </summary>
    private Run Load(KeepAlivePool pool, int threads, TimeSpan span)
    {
        var refusedBefore = pool.GetStatistics().RefusedConnects;
        long operations = 0, errors = 0, worstTicks = 0;
        Exception? firstError = null;
        var watch = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            while (watch.Elapsed < span)
            {
                var checkout = Stopwatch.StartNew();
                try
                {
                    using var lease = pool.Lease();
                    var took = checkout.Elapsed.Ticks;
                    for (var worst = Interlocked.Read(ref worstTicks); took > worst; worst = Interlocked.Read(ref worstTicks))
                    {
                        if (Interlocked.CompareExchange(ref worstTicks, took, worst) == worst)
                            break;
                    }

                    try
                    {
                        Scalar(lease.Connection, "SELECT SLEEP(0.05)");
                        Interlocked.Increment(ref operations);
                    }
                    catch (Exception e)
                    {
                        lease.ReportFailure(e);
                        throw;
                    }
                }
                catch (Exception e)
                {
                    Interlocked.Increment(ref errors);
                    Interlocked.CompareExchange(ref firstError, e, null);
                }
            }
        })
        { IsBackground = true }).ToList();
        workers.ForEach(w => w.Start());

        // A session counts as live on the server when two samples 20 ms apart both show it: the processlist also shows,
        // for a moment, a connect being refused and a session ending after the server counted it out (a fifth row was
        // seen once beside the account's 4 while the machine was loaded). The pool's own count is sampled beside it.
        var maxLive = 0;
        var maxHeld = 0;
        IReadOnlyList<long> previous = [];
        while (workers.Any(w => w.IsAlive) && watch.Elapsed < span + s_connectionTimeout + TimeSpan.FromSeconds(5))
        {
            var now = FullConnections();
            maxLive = Math.Max(maxLive, now.Count(previous.Contains));
            var statistics = pool.GetStatistics();
            maxHeld = Math.Max(maxHeld, statistics.Active + statistics.Idle + statistics.Checking);
            previous = now;
            Thread.Sleep(20);
        }

        var elapsed = watch.Elapsed;
        Assert.That(workers.All(w => w.Join(TimeSpan.FromSeconds(1))), Is.True, "every worker finished within its time");
        var refused = pool.GetStatistics().RefusedConnects - refusedBefore;
        return new Run(operations, errors, TimeSpan.FromTicks(worstTicks), maxLive, maxHeld, refused, refused / elapsed.TotalSeconds, firstError, elapsed);
    }

    private void Report(string what, Run run) =>
        TestContext.Progress.WriteLine(
            $"{Driver}, {what}: {run.Operations} operations, {run.Errors} errors, {run.Refused} refused connects ({run.RefusedPerSecond:F1}/s), " +
            $"worst checkout {run.Worst.TotalMilliseconds:F0} ms, at most {run.MaxLive} live on the server ({run.MaxHeld} held by the pool), in {run.Elapsed.TotalSeconds:F1} s" +
            (run.FirstError is { } e ? $"; first error: {InUseFaultTests.Describe(e)}" : string.Empty));

    private sealed class Run(long operations, long errors, TimeSpan worst, int maxLive, int maxHeld, long refused, double refusedPerSecond, Exception? firstError, TimeSpan elapsed)
    {
        public long Operations { get; } = operations;

        public long Errors { get; } = errors;

        public TimeSpan Worst { get; } = worst;

        public int MaxLive { get; } = maxLive;

        /// <summary>The most connections the pool held open at once (on loan, idle, or opened and on their way).</summary>
        public int MaxHeld { get; } = maxHeld;

        public long Refused { get; } = refused;

        public double RefusedPerSecond { get; } = refusedPerSecond;

        public Exception? FirstError { get; } = firstError;

        public TimeSpan Elapsed { get; } = elapsed;
    }

    private sealed class Scope(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
