using System;
using System.Collections.Generic;
using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Threading.Tasks;
using System.Transactions;
using NUnit.Framework;
using IsolationLevel = System.Data.IsolationLevel;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// System.Transactions at the pool level (issue 23): connections enlisted in a <see cref="TransactionScope"/>
/// (MySqlConnector runs it as XA, MySql.Data as a local transaction) commit or roll back with the scope, are not
/// handed to another caller before the scope ends, and reach the next caller clean. Rows are counted from the
/// server through the admin connection (MySqlConnector, not pooled).
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class TransactionScopeTests(MySqlDriver driver) : IntegrationTest(driver)
{
    private const int Rounds = 5;

    [SetUp]
    public void CreateTable()
    {
        Admin.Execute("CREATE TABLE IF NOT EXISTS txscope (id INT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(20) NOT NULL) ENGINE=InnoDB");
        Admin.Execute("DELETE FROM txscope");
    }

    [Test]
    public void Scopes_not_completed_and_completed_then_an_ordinary_unit_of_work_on_a_pool_of_one()
    {
        var pool = CreatePool(o => o.MaxPoolSize = 1);
        var errors = new List<Exception>();
        for (var round = 0; round < Rounds; round++)
        {
            Capture(errors, () =>
            {
                using var scope = new TransactionScope();
                using var connection = OpenInScope(pool);
                Insert(connection, "rolledback");
                Insert(connection, "rolledback");
            });
            Capture(errors, () =>
            {
                using var scope = new TransactionScope();
                using (var connection = OpenInScope(pool))
                {
                    Insert(connection, "completed");
                    Insert(connection, "completed");
                }

                scope.Complete();
            });
            Capture(errors, () =>
            {
                using var connection = pool.Rent();
                using var transaction = connection.BeginTransaction(IsolationLevel.ReadCommitted);
                Insert(connection, "ordinary", transaction);
                transaction.Commit();
            });
        }

        AssertTable(errors);
        AssertNextCallerClean(pool);
    }

    [Test]
    public async Task Async_flow_scopes_not_completed_and_completed_then_an_ordinary_unit_of_work_on_a_pool_of_one()
    {
        // Mono's System.Transactions with async flow fails these scopes on both drivers whatever the pool does
        // (NullReferenceException inside it, "Commit has already been called for this transaction", in some runs
        // and not others), and leaves the ambient transaction on the thread, which then enlists the next test's
        // own connections. The synchronous scopes run under Mono.
        if (UnderMono)
            Assert.Ignore("Mono's System.Transactions fails async-flow scopes (NullReferenceException, \"Commit has already been called\") and leaves the ambient transaction on the thread");
        var pool = CreatePool(o => o.MaxPoolSize = 1);
        var errors = new List<Exception>();
        for (var round = 0; round < Rounds; round++)
        {
            await CaptureAsync(errors, async () =>
            {
                using var scope = new TransactionScope(TransactionScopeAsyncFlowOption.Enabled);
                using var connection = new KeepAliveConnection(pool, null);
                await connection.OpenAsync().ConfigureAwait(false);
                await InsertAsync(connection, "rolledback").ConfigureAwait(false);
                await InsertAsync(connection, "rolledback").ConfigureAwait(false);
            }).ConfigureAwait(false);
            await CaptureAsync(errors, async () =>
            {
                using var scope = new TransactionScope(TransactionScopeAsyncFlowOption.Enabled);
                using (var connection = new KeepAliveConnection(pool, null))
                {
                    await connection.OpenAsync().ConfigureAwait(false);
                    await InsertAsync(connection, "completed").ConfigureAwait(false);
                    await InsertAsync(connection, "completed").ConfigureAwait(false);
                }

                scope.Complete();
            }).ConfigureAwait(false);
            await CaptureAsync(errors, async () =>
            {
                using var connection = await pool.RentAsync().ConfigureAwait(false);
#if NET
                await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted).ConfigureAwait(false);
                await InsertAsync(connection, "ordinary", transaction).ConfigureAwait(false);
                await transaction.CommitAsync().ConfigureAwait(false);
#else
                using var transaction = connection.BeginTransaction(IsolationLevel.ReadCommitted);
                await InsertAsync(connection, "ordinary", transaction).ConfigureAwait(false);
                transaction.Commit();
#endif
            }).ConfigureAwait(false);
        }

        AssertTable(errors);
        AssertNextCallerClean(pool);
    }

    [Test]
    public void A_scope_that_times_out_persists_nothing_and_the_next_caller_gets_a_clean_connection()
    {
        var pool = CreatePool(o => o.MaxPoolSize = 1);

        Exception? error = null;
        try
        {
            using var scope = new TransactionScope(TransactionScopeOption.Required, TimeSpan.FromMilliseconds(300));
            using (var connection = OpenInScope(pool))
            {
                Insert(connection, "timedout");

                // The scope's timer aborts the transaction meanwhile: System.Transactions checks timeouts on a coarse
                // timer (about half a second), so wait for the abort itself, boundedly (Mono's never comes).
                var transaction = Transaction.Current!;
                var waited = System.Diagnostics.Stopwatch.StartNew();
                var limit = TimeSpan.FromSeconds(UnderMono ? 1 : 10);
                while (transaction.TransactionInformation.Status == TransactionStatus.Active && waited.Elapsed < limit)
                    Elapse(TimeSpan.FromMilliseconds(20));
            }

            scope.Complete();
        }
        catch (Exception e)
        {
            error = e;
        }

        if (error is null && UnderMono)
        {
            // Mono's System.Transactions never aborts a scope on its timeout: the scope completes and commits.
            TestContext.Progress.WriteLine($"{Driver}, scope timed out under Mono: no error; rows {Admin.Count("SELECT COUNT(*) FROM txscope")}");
            AssertNextCallerClean(pool);
            Assert.Ignore("Mono's TransactionScope does not time out; the next caller still got a clean connection.");
        }

        TestContext.Progress.WriteLine($"{Driver}, scope timed out: {Show(error)}");
        Assert.That(error, Is.InstanceOf<TransactionAbortedException>(), Show(error));
        Assert.That(Admin.Count("SELECT COUNT(*) FROM txscope"), Is.Zero, "nothing of the timed-out scope persisted");
        AssertNextCallerClean(pool);
    }

    [Test]
    public void A_kill_of_the_enlisted_connection_fails_the_scope_persists_nothing_and_the_next_caller_works()
    {
        var pool = CreatePool(o => o.MaxPoolSize = 1);
        Exception? atStatement = null;
        Exception? atEnd = null;
        long victim = 0;
        try
        {
            using var scope = new TransactionScope();
            using (var connection = OpenInScope(pool))
            {
                Insert(connection, "killed");
                victim = ConnectionId(connection);
                Admin.Kill(victim);
                try
                {
                    Insert(connection, "killed");
                }
                catch (DbException e)
                {
                    atStatement = e;
                }
            }

            scope.Complete();
        }
        catch (Exception e)
        {
            atEnd = e;
        }

        TestContext.Progress.WriteLine($"{Driver}, KILL mid-scope: at the statement {Show(atStatement)}; at Complete/Dispose {Show(atEnd)}");
        Assert.That(atStatement ?? atEnd, Is.Not.Null, "the scope failed");
        Assert.That(Admin.Count("SELECT COUNT(*) FROM txscope"), Is.Zero, "nothing of the killed scope persisted");
        Assert.That(Request(pool), Is.Null, "the next caller on the pool works");
        using (var next = pool.Rent())
            Assert.That(ConnectionId(next), Is.Not.EqualTo(victim), "the killed connection was not handed out again");
        AssertNextCallerClean(pool);
    }

    /// <summary>
    /// Two connections opened one after the other inside one scope (two NHibernate sessions in one service call):
    /// the second gets the connection the first gave back, still enlisted, as the drivers' own pools give it
    /// (MySql.Data refuses to enlist a second connection, "Multiple simultaneous connections", and MySqlConnector
    /// would run a second XA branch). On a pool of one: the second open does not wait for the slot the first holds.
    /// </summary>
    [TestCase(true)]
    [TestCase(false)]
    public void Two_sequential_connections_in_one_scope_share_its_connection_as_the_drivers_pools_do(bool complete)
    {
        var pool = CreatePool(o =>
        {
            o.MaxPoolSize = 1;
            o.ConnectionTimeout = TimeSpan.FromSeconds(2);
            o.ValidationTimeout = TimeSpan.FromSeconds(1);
        });
        long first = 0;
        long second = 0;
        Exception? error = null;
        try
        {
            using var scope = new TransactionScope();
            using (var connection = OpenInScope(pool))
            {
                first = ConnectionId(connection);
                Insert(connection, "first");
            }

            using (var connection = OpenInScope(pool))
            {
                connection.EnlistTransaction(Transaction.Current); // as NHibernate does after the provider's open
                second = ConnectionId(connection);
                Insert(connection, "second");
            }

            if (complete)
                scope.Complete();
        }
        catch (Exception e)
        {
            error = e;
        }

        var rows = Admin.Count("SELECT COUNT(*) FROM txscope");
        TestContext.Progress.WriteLine($"{Driver}, two sequential connections in one scope ({(complete ? "completed" : "not completed")}): {Show(error)}; connections {first}, {second}; rows {rows}");
        Assert.That(error, Is.Null, Show(error));
        Assert.That(second, Is.EqualTo(first), "one physical connection for the scope");
        Assert.That(rows, Is.EqualTo(complete ? 2 : 0), complete ? "both rows committed with the scope" : "both rolled back with it");
        Assert.That(Log.Messages("ConnectionReclaimed"), Has.Length.EqualTo(1));
        AssertNextCallerClean(pool);
    }

    /// <summary>
    /// A handle dropped inside a scope without being given back (a forgotten <c>using</c>): once collected, its
    /// connection is not cleaned while the scope goes on (that would roll back the scope's first part before its
    /// commit) but goes to the next connection opened in the scope, as one given back does.
    /// </summary>
    [TestCase(true)]
    [TestCase(false)]
    public void A_handle_dropped_inside_a_scope_leaves_its_work_to_the_scope_and_its_connection_to_the_next_open_in_it(bool complete)
    {
        if (UnderMono)
            Assert.Ignore("Mono's conservative GC scans the stack: a handle dropped on this thread is not always collected (3 of 4 runs kept it), so nothing is recovered to test");
        var pool = CreatePool(o =>
        {
            o.MaxPoolSize = 1;
            o.ConnectionTimeout = TimeSpan.FromSeconds(5);
            o.ValidationTimeout = TimeSpan.FromSeconds(1);
        });
        long second;
        using (var scope = new TransactionScope())
        {
            var first = OpenInScopeAndDrop(pool, "dropped");
            GC.Collect();
            GC.WaitForPendingFinalizers();
            using (var connection = OpenInScope(pool))
            {
                second = ConnectionId(connection);
                Insert(connection, "after the drop");
            }

            Assert.That(second, Is.EqualTo(first), "the dropped handle's connection, still in the scope's transaction");
            if (complete)
                scope.Complete();
        }

        var rows = Admin.Count("SELECT COUNT(*) FROM txscope");
        TestContext.Progress.WriteLine($"{Driver}, a handle dropped in a scope ({(complete ? "completed" : "not completed")}): rows {rows}, recovered {pool.GetStatistics().Recovered}");
        Assert.That(rows, Is.EqualTo(complete ? 2 : 0), complete ? "the dropped handle's row committed with the scope" : "both rolled back with it");
        Assert.That(pool.GetStatistics().Recovered, Is.EqualTo(1));
        AssertNextCallerClean(pool);
    }

    /// <summary>Opens a handle in the ambient scope, inserts a row and drops the handle; the connection's server thread.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static long OpenInScopeAndDrop(KeepAlivePool pool, string kind)
    {
        var connection = OpenInScope(pool);
        Insert(connection, kind);
        return ConnectionId(connection);
    }

    [Test]
    public void A_connection_given_back_inside_an_open_scope_reaches_no_other_caller_before_the_scope_ends()
    {
        var pool = CreatePool(o =>
        {
            o.MaxPoolSize = 1;
            o.ConnectionTimeout = TimeSpan.FromMilliseconds(500);
            o.ValidationTimeout = TimeSpan.FromMilliseconds(250);
        });

        using (var scope = new TransactionScope())
        {
            var connection = pool.Rent();
            Insert(connection, "held");
            connection.Dispose();

            var stats = pool.GetStatistics();
            Assert.That((stats.Total, stats.Idle), Is.EqualTo((1, 0)), "the connection stays in its slot, out of the idle list");
            var meanwhile = Task.Run(() => OtherCaller(pool)).GetAwaiter().GetResult();
            Assert.That(meanwhile, Is.InstanceOf<PoolTimeoutException>(), meanwhile is null ? "another caller got the connection" : InUseFaultTests.Describe(meanwhile));
            Assert.That(Admin.Count("SELECT COUNT(*) FROM txscope"), Is.Zero, "the row is not committed while the scope is open");
            scope.Complete();
        }

        var after = Task.Run(() => OtherCaller(pool)).GetAwaiter().GetResult();
        Assert.That(after, Is.Null, "another caller gets the connection once the scope has completed");
        Assert.That(Admin.Count("SELECT COUNT(*) FROM txscope WHERE kind = 'held'"), Is.EqualTo(1));
        AssertNextCallerClean(pool);
    }

    [Test]
    public void A_connection_rented_in_a_scope_is_enlisted_and_an_explicit_enlistment_after_it_as_NHibernate_makes_is_accepted()
    {
        var pool = CreatePool(o => o.MaxPoolSize = 1);
        foreach (var complete in new[] { false, true })
        {
            using var scope = new TransactionScope();
            using (var connection = pool.Rent())
            {
                connection.EnlistTransaction(Transaction.Current); // NHibernate's ConnectionManager does this after the provider's Rent
                Insert(connection, complete ? "completed" : "rolledback");
            }

            if (complete)
                scope.Complete();
        }

        Assert.That(Admin.Count("SELECT COUNT(*) FROM txscope WHERE kind = 'rolledback'"), Is.Zero, "the scope not completed rolled back what was rented in it");
        Assert.That(Admin.Count("SELECT COUNT(*) FROM txscope WHERE kind = 'completed'"), Is.EqualTo(1));
        AssertNextCallerClean(pool);
    }

    [TestCase("AutoEnlist=false")]
    [TestCase("Auto Enlist=false")]
    public void A_string_that_says_AutoEnlist_false_keeps_its_connections_out_of_the_scope_as_the_drivers_do(string keyword)
    {
        var pool = CreatePool(o =>
        {
            o.MaxPoolSize = 1;
            o.ConnectionString += ";" + keyword;
        });
        using (new TransactionScope())
        {
            using (var rented = pool.Rent())
                Insert(rented, "outside");
            using (var opened = OpenInScope(pool))
                Insert(opened, "outside");
        }

        Assert.That(Admin.Count("SELECT COUNT(*) FROM txscope WHERE kind = 'outside'"), Is.EqualTo(2), "not enlisted: each statement committed on its own though the scope did not complete");
        AssertNextCallerClean(pool);
    }

    /// <summary>A caller outside the scope: rents, runs a statement, gives back; returns the error it met.</summary>
    private static Exception? OtherCaller(KeepAlivePool pool)
    {
        using var unrelated = new TransactionScope(TransactionScopeOption.Suppress);
        try
        {
            using var connection = pool.Rent();
            Scalar(connection, "SELECT 1");
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    /// <summary>A connection opened inside the ambient scope (as <c>KeepAliveDataSource.CreateConnection().Open()</c> gives it), enlisted.</summary>
    private static KeepAliveConnection OpenInScope(KeepAlivePool pool)
    {
        var connection = new KeepAliveConnection(pool, null);
        connection.Open();
        return connection;
    }

    private static void Insert(DbConnection connection, string kind, DbTransaction? transaction = null) =>
        Scalar(connection, $"INSERT INTO txscope (kind) VALUES ('{kind}')", transaction);

    private static async Task InsertAsync(DbConnection connection, string kind, DbTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = $"INSERT INTO txscope (kind) VALUES ('{kind}')";
        command.Transaction = transaction;
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    private static void Capture(List<Exception> errors, Action unit)
    {
        try
        {
            unit();
        }
        catch (Exception e)
        {
            errors.Add(e);
        }
    }

    private static async Task CaptureAsync(List<Exception> errors, Func<Task> unit)
    {
        try
        {
            await unit().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            errors.Add(e);
        }
    }

    /// <summary>The issue's table row: rolled-back rows that persisted, completed rows written, errors.</summary>
    private void AssertTable(List<Exception> errors)
    {
        var rolledBack = Admin.Count("SELECT COUNT(*) FROM txscope WHERE kind = 'rolledback'");
        var completed = Admin.Count("SELECT COUNT(*) FROM txscope WHERE kind = 'completed'");
        var ordinary = Admin.Count("SELECT COUNT(*) FROM txscope WHERE kind = 'ordinary'");
        TestContext.Progress.WriteLine(
            $"{Driver}: rolled-back rows that persisted {rolledBack}; completed rows written {completed} of {2 * Rounds}; ordinary rows {ordinary} of {Rounds}; errors {errors.Count} of {3 * Rounds}");
        foreach (var error in errors)
            TestContext.Progress.WriteLine($"  {InUseFaultTests.Describe(error)}");
        Assert.That((rolledBack, completed, ordinary, errors.Count), Is.EqualTo((0L, 2L * Rounds, (long)Rounds, 0)),
            "(rolled-back rows that persisted, completed rows, ordinary rows, errors)");
    }

    /// <summary>
    /// The next caller on the pool gets a connection with no transaction and no XA state left: autocommit on, an
    /// ordinary transaction begins and commits (a session still in an XA transaction refuses it), no prepared XA
    /// transaction on the server.
    /// </summary>
    private void AssertNextCallerClean(KeepAlivePool pool)
    {
        using (var connection = pool.Rent())
        {
            using (var command = connection.CreateCommand())
            {
                command.CommandText = "SELECT @@autocommit, CONNECTION_ID()";
                using var reader = command.ExecuteReader();
                Assert.That(reader.Read(), Is.True);
                Assert.That(Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture), Is.EqualTo(1), "autocommit is on");
            }

            using var transaction = connection.BeginTransaction();
            Scalar(connection, "SELECT COUNT(*) FROM txscope", transaction);
            transaction.Commit();
        }

        Assert.That(Admin.ConnectionIdsOf("XA RECOVER"), Is.Empty, "no XA transaction is left prepared on the server");
    }

    private static string Show(Exception? error) => error is null ? "none" : InUseFaultTests.Describe(error);
}
