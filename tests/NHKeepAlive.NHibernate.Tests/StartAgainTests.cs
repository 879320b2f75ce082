using System;
using System.Diagnostics;
using System.Threading.Tasks;
using NHibernate;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.NHibernate.Tests;

/// <summary>
/// Issue 24 through NHibernate: a connection that died as it was taken makes <c>ISession.BeginTransaction()</c>
/// begin again on a live connection; nothing the caller wrote is ever repeated.
/// </summary>
/// <remarks>
/// The race is made deterministic as in the pool-level tests: one connection, handed out inside a long bypass
/// window (no ping) with the socket check and the keepalive off, so a connection KILLed on the server (and gone
/// from its processlist) is handed out exactly as one whose close lands just after the checkout's checks.
/// </remarks>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class StartAgainTests(MySqlDriver driver) : NHibernateTest(driver)
{
    private const int Rounds = 100;

    [TestCase(false)]
    [TestCase(true)]
    public async Task A_hundred_rounds_of_a_unit_of_work_a_kill_of_its_connection_and_the_next_unit_of_work_give_no_errors(bool async)
    {
        using var factory = StartAgainFactory();
        var pool = PoolOf(factory);
        var errors = 0;
        Exception? firstError = null;
        var watch = Stopwatch.StartNew();
        for (var round = 0; round < Rounds; round++)
        {
            foreach (var unit in new[] { "before", "after" })
            {
                try
                {
                    using var session = factory.OpenSession();
                    var thread = await UnitOfWork(session, $"{unit} {round}", async);
                    if (unit == "before")
                    {
                        session.Dispose(); // the connection goes back to the pool, idle, and is killed there
                        Assert.That(pool.GetStatistics().Idle, Is.EqualTo(1), "the connection is idle in the pool");
                        KillAndWait(thread);
                    }
                }
                catch (Exception e) when (e is HibernateException or System.Data.Common.DbException or InvalidOperationException)
                {
                    errors++;
                    firstError ??= e;
                }
            }
        }

        watch.Stop();
        var stats = pool.GetStatistics();
        TestContext.Progress.WriteLine(
            $"{Driver}, pooled sessions ({(async ? "async" : "sync")}): {Rounds} rounds of {{unit of work; KILL; unit of work}}: {errors} errors in {2 * Rounds} units, " +
            $"started again {stats.StartedAgain}, reopened {stats.Reopened}, evicted {stats.Evicted}, in {watch.Elapsed.TotalSeconds:F1} s; first error: {ServerErrors.Describe(firstError)}");
        Assert.That(errors, Is.Zero, firstError?.ToString());
        Assert.That(_admin.Count("SELECT COUNT(*) FROM nh_note"), Is.EqualTo(2 * Rounds), "every unit of work's row is there, once");
        Assert.That(stats.StartedAgain, Is.EqualTo(Rounds), "every KILL was met by the next BeginTransaction, which began again");
        PoolAccounting.AssertPoolMatchesServer(_admin, pool);
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task A_held_session_begins_its_transaction_after_each_kill_with_no_errors(bool async)
    {
        using var factory = StartAgainFactory();
        var pool = PoolOf(factory);
        var errors = 0;
        Exception? firstError = null;
        using (var session = factory.WithOptions().ConnectionReleaseMode(ConnectionReleaseMode.OnClose).OpenSession())
        {
            for (var round = 0; round < Rounds; round++)
            {
                try
                {
                    KillAndWait(await UnitOfWork(session, $"held {round}", async));
                }
                catch (Exception e) when (e is HibernateException or System.Data.Common.DbException or InvalidOperationException)
                {
                    errors++;
                    firstError ??= e;
                }
            }

            try
            {
                await UnitOfWork(session, "held last", async);
            }
            catch (Exception e) when (e is HibernateException or System.Data.Common.DbException or InvalidOperationException)
            {
                errors++;
                firstError ??= e;
            }
        }

        var stats = pool.GetStatistics();
        TestContext.Progress.WriteLine(
            $"{Driver}, held session ({(async ? "async" : "sync")}): {Rounds} KILLs, each followed by BeginTransaction: {errors} errors, " +
            $"started again {stats.StartedAgain}, reopened {stats.Reopened}; first error: {ServerErrors.Describe(firstError)}");
        Assert.That(errors, Is.Zero, firstError?.ToString());
        Assert.That(_admin.Count("SELECT COUNT(*) FROM nh_note"), Is.EqualTo(Rounds + 1), "every transaction's row is there, once");
        Assert.That(stats.StartedAgain + stats.Reopened, Is.EqualTo(Rounds), "each KILL was met by a reopen before BEGIN or by a start-again");
        PoolAccounting.AssertPoolMatchesServer(_admin, pool);
    }

    [Test]
    public void An_insert_outside_a_transaction_as_the_first_statement_after_a_kill_surfaces_the_error_and_is_not_repeated()
    {
        using var factory = StartAgainFactory();
        var pool = PoolOf(factory);
        long thread;
        using (var session = factory.OpenSession())
            thread = UnitOfWork(session, "first", async: false).GetAwaiter().GetResult();
        KillAndWait(thread);

        Exception? error;
        using (var session = factory.OpenSession())
            error = Assert.Catch(() => session.CreateSQLQuery("INSERT INTO nh_note (Text) VALUES ('autocommit')").ExecuteUpdate());

        TestContext.Progress.WriteLine($"{Driver}, INSERT outside a transaction as the session's first statement after a KILL: {ServerErrors.Describe(error)}");
        Assert.That(DisconnectClassifier.IsDisconnect(error!), Is.True, ServerErrors.Describe(error));
        Assert.That(Rows("autocommit"), Is.Zero, "the statement was not repeated");
        Assert.That(pool.GetStatistics().StartedAgain, Is.Zero);
        Save(factory, "next");
        Assert.That(Rows("next"), Is.EqualTo(1), "the next unit of work gets a live connection");
        PoolAccounting.AssertPoolMatchesServer(_admin, pool);
    }

    /// <summary>
    /// Units of work inside a TransactionScope (sessions opened in the scope, as a service layer does): the first
    /// round trip on the connection taken is the driver's enlistment, which begins again on a live connection.
    /// </summary>
    [Test]
    public void Twenty_rounds_of_a_scope_a_kill_of_its_connection_and_the_next_scope_give_no_errors()
    {
        if (Type.GetType("Mono.Runtime") is not null)
            Assert.Ignore("TransactionScope through NHibernate is not run under Mono (see TransactionScopeTests)");
        using var factory = StartAgainFactory();
        var pool = PoolOf(factory);
        const int rounds = 20;
        var errors = 0;
        Exception? firstError = null;
        for (var round = 0; round < rounds; round++)
        {
            foreach (var unit in new[] { "scope before", "scope after" })
            {
                try
                {
                    long thread;
                    using (var scope = new System.Transactions.TransactionScope())
                    {
                        using (var session = factory.OpenSession())
                        {
                            session.Save(new Note { Text = $"{unit} {round}" });
                            session.Flush();
                            thread = PoolAccounting.ServerThreadOf(session.Connection);
                        }

                        scope.Complete();
                    }

                    if (unit == "scope before")
                    {
                        Assert.That(pool.GetStatistics().Idle, Is.EqualTo(1), "the connection is idle in the pool once the scope ended");
                        KillAndWait(thread);
                    }
                }
                catch (Exception e) when (e is HibernateException or System.Data.Common.DbException or InvalidOperationException or System.Transactions.TransactionException)
                {
                    errors++;
                    firstError ??= e;
                }
            }
        }

        var stats = pool.GetStatistics();
        TestContext.Progress.WriteLine(
            $"{Driver}, {rounds} rounds of {{scope; KILL; scope}}: {errors} errors in {2 * rounds} scopes, started again {stats.StartedAgain}, evicted {stats.Evicted}; first error: {ServerErrors.Describe(firstError)}");
        Assert.That(errors, Is.Zero, firstError?.ToString());
        Assert.That(_admin.Count("SELECT COUNT(*) FROM nh_note"), Is.EqualTo(2 * rounds), "every scope's row is there, once");
        Assert.That(stats.StartedAgain, Is.EqualTo(rounds), "every KILL was met by the next scope's enlistment, which began again");
        PoolAccounting.AssertPoolMatchesServer(_admin, pool);
    }

    /// <summary>One connection, handed out unchecked inside a long bypass window, with no socket check and no keepalive.</summary>
    private ISessionFactory StartAgainFactory() => Mappings.Configuration(Driver).UseKeepAlive(o =>
    {
        o.MaxPoolSize = 1;
        o.ValidationBypassWindow = TimeSpan.FromSeconds(5);
        o.KeepAliveInterval = TimeSpan.Zero;
        o.SocketCheck = false;
    }).BuildSessionFactory();

    /// <summary>{BeginTransaction; save; Commit}, sync or async; the server thread the transaction ran on.</summary>
    private static async Task<long> UnitOfWork(ISession session, string text, bool async)
    {
        using var transaction = session.BeginTransaction();
        if (async)
            await session.SaveAsync(new Note { Text = text });
        else
            session.Save(new Note { Text = text });
        var thread = PoolAccounting.ServerThreadOf(session.Connection);
        if (async)
            await transaction.CommitAsync();
        else
            transaction.Commit();
        return thread;
    }
}
