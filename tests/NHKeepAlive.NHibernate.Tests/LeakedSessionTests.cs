using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using NHibernate;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.NHibernate.Tests;

/// <summary>
/// Issue 18 through NHibernate: sessions leaked the way an ASP.NET request that throws between
/// <c>BeginTransaction</c> and <c>Commit</c> without <c>using</c> leaks them (a transaction open, a row saved
/// and flushed, every reference dropped) fill the pool; after a full collection the next units of work run
/// at once, the leaked rows are rolled back and every connection is accounted for.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class LeakedSessionTests(MySqlDriver driver) : NHibernateTest(driver)
{
    private const int MaxPoolSize = 10;
    private const int Units = 8;

    [TestCase(false)]
    [TestCase(true)]
    public async Task Ten_sessions_leaked_inside_a_transaction_come_back_after_a_collection_and_the_next_units_of_work_run_at_once(bool async)
    {
        var factory = Mappings.Configuration(Driver).UseKeepAlive(o => o.MaxPoolSize = MaxPoolSize).BuildSessionFactory();
        var pool = PoolOf(factory);
        try
        {
            // On a thread of its own: nothing on this thread's stack (Mono scans it conservatively) keeps a session alive.
            var leaker = new Thread(() =>
            {
                if (async)
                    LeakSessionsAsync(factory, MaxPoolSize).GetAwaiter().GetResult();
                else
                    LeakSessions(factory, MaxPoolSize);
            });
            leaker.Start();
            Assert.That(leaker.Join(TimeSpan.FromSeconds(30)), Is.True, "the leaking requests finished");
            Assert.That(pool.GetStatistics().Active, Is.EqualTo(MaxPoolSize), "every connection is on loan to a session nobody holds");

            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();

            var errors = 0;
            Exception? firstError = null;
            var slowest = TimeSpan.Zero;
            var first = TimeSpan.Zero;
            var total = Stopwatch.StartNew();
            for (var i = 0; i < Units; i++)
            {
                var watch = Stopwatch.StartNew();
                try
                {
                    if (i % 2 == 1)
                        await SaveAsync(factory, "after leak");
                    else
                        Save(factory, "after leak");
                }
                catch (Exception e) when (e is HibernateException or System.Data.Common.DbException or PoolTimeoutException or InvalidOperationException)
                {
                    errors++;
                    firstError ??= e;
                }

                watch.Stop();
                if (i == 0)
                    first = watch.Elapsed;
                if (watch.Elapsed > slowest)
                    slowest = watch.Elapsed;
            }

            total.Stop();
            var stats = pool.GetStatistics();
            TestContext.Progress.WriteLine(
                $"{Driver}, {MaxPoolSize} sessions leaked in a transaction ({(async ? "async" : "sync")}), then {Units} units of work: " +
                $"{errors} errors; first unit {first.TotalMilliseconds:F0} ms, slowest {slowest.TotalMilliseconds:F0} ms, all {total.Elapsed.TotalMilliseconds:F0} ms; " +
                $"recovered {stats.Recovered}; leaked rows persisted {Rows("leaked")}; first error: {ServerErrors.Describe(firstError)}");
            Assert.That(errors, Is.Zero, firstError?.ToString());
            Assert.That(slowest, Is.LessThan(TimeSpan.FromSeconds(3)), "each unit of work ran within moments: the leaked connections came back without the pool wait");
            Assert.That(Rows("after leak"), Is.EqualTo(Units), "every unit of work committed");
            Assert.That(Rows("leaked"), Is.Zero, "the leaked sessions' rows were rolled back");
            Assert.That((stats.Recovered, stats.Active), Is.EqualTo(((long)MaxPoolSize, 0)), "every leaked connection was taken back");
            PoolAccounting.AssertPoolMatchesServer(_admin, pool);
        }
        finally
        {
            factory.Dispose();
        }

        MySql.Data.MySqlClient.MySqlConnection.ClearAllPools(); // the schema export's connections are not the pool's
        MySqlConnector.MySqlConnection.ClearAllPools();
        Assert.That(pool.GetStatistics().Total, Is.Zero, "the disposed factory's pool closed its connections");
        Assert.That(_admin.WaitForConnectionCount(n => n == 0, TimeSpan.FromSeconds(10)), Is.True, $"nothing of the test user's is left on the server (left: {_admin.ConnectionIds().Count})");
    }

    /// <summary>
    /// <paramref name="count"/> requests that open a session, begin a transaction, save and flush a row, then
    /// throw before <c>Commit</c> with no <c>using</c>: nothing outside this method refers to the sessions.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void LeakSessions(ISessionFactory factory, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var session = factory.OpenSession();
            session.BeginTransaction();
            session.Save(new Note { Text = "leaked" });
            session.Flush();
        }
    }

    /// <summary>The same with the async API: <c>SaveAsync</c> and <c>FlushAsync</c>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task LeakSessionsAsync(ISessionFactory factory, int count)
    {
        for (var i = 0; i < count; i++)
            await LeakOneSessionAsync(factory);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task LeakOneSessionAsync(ISessionFactory factory)
    {
        var session = factory.OpenSession();
        session.BeginTransaction();
        await session.SaveAsync(new Note { Text = "leaked" });
        await session.FlushAsync();
    }
}
