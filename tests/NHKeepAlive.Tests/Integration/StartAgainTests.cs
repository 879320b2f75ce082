using System;
using System.Data.Common;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using System.Transactions;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// Issue 24: a connection that died as it was taken (a server close that reached the client just after the
/// checkout's checks) makes a transaction begin again on a live connection under the same handle; nothing
/// the caller wrote is ever repeated.
/// </summary>
/// <remarks>
/// The race is made deterministic: the pool holds one connection, hands it out inside its bypass window
/// (no ping) and with the socket check off, so a connection KILLed on the server after its return (and
/// gone from the processlist) is handed out exactly as one whose close lands just after the checks.
/// </remarks>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class StartAgainTests(MySqlDriver driver) : IntegrationTest(driver)
{
    private const int Rounds = 50;

    [Test]
    public void A_transaction_begun_on_a_connection_killed_after_its_return_begins_again_on_a_live_one()
    {
        var pool = CreateStartAgainPool();
        CreateTable();
        var killed = KillTheIdleConnection(pool, ReturnOne(pool));

        long ranOn;
        using (var connection = pool.Rent())
        {
            using var transaction = connection.BeginTransaction();
            Execute(connection, "INSERT INTO start_again (tag) VALUES ('sync')", transaction);
            ranOn = Convert.ToInt64(Scalar(connection, "SELECT CONNECTION_ID()", transaction), System.Globalization.CultureInfo.InvariantCulture);
            transaction.Commit();
        }

        var stats = pool.GetStatistics();
        TestContext.Progress.WriteLine($"{Driver}, BEGIN on a killed connection (sync): started again {stats.StartedAgain}, evicted {stats.Evicted}; {string.Join(" | ", Log.Messages("TransactionStartedAgain"))}");
        Assert.That(ranOn, Is.Not.EqualTo(killed), "the transaction ran on a live connection");
        Assert.That(Rows("sync"), Is.EqualTo(1), "the row is there");
        Assert.That((stats.StartedAgain, stats.Evicted, stats.Total), Is.EqualTo((1L, 1L, 1)));
        Assert.That(Log.Messages("TransactionStartedAgain"), Has.Length.EqualTo(1));
    }

#if NET
    [Test]
    public async Task A_transaction_begun_asynchronously_on_a_connection_killed_after_its_return_begins_again_on_a_live_one()
    {
        var pool = CreateStartAgainPool();
        CreateTable();
        var killed = KillTheIdleConnection(pool, ReturnOne(pool));

        long ranOn;
        await using (var connection = await pool.RentAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var insert = connection.CreateCommand())
            {
                insert.Transaction = transaction;
                insert.CommandText = "INSERT INTO start_again (tag) VALUES ('async')";
                await insert.ExecuteNonQueryAsync();
                insert.CommandText = "SELECT CONNECTION_ID()";
                ranOn = Convert.ToInt64(await insert.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
            }

            await transaction.CommitAsync();
        }

        var stats = pool.GetStatistics();
        TestContext.Progress.WriteLine($"{Driver}, BEGIN on a killed connection (async): started again {stats.StartedAgain}, evicted {stats.Evicted}");
        Assert.That(ranOn, Is.Not.EqualTo(killed), "the transaction ran on a live connection");
        Assert.That(Rows("async"), Is.EqualTo(1), "the row is there");
        Assert.That((stats.StartedAgain, stats.Evicted, stats.Total), Is.EqualTo((1L, 1L, 1)));
    }
#endif

    /// <summary>
    /// Inside a TransactionScope the first round trip of a lease is the driver's enlistment (its BEGIN): a
    /// connection that died as it was taken is closed there, and the enlistment made again on a live one.
    /// </summary>
    [Test]
    public void A_connection_opened_inside_a_TransactionScope_on_a_connection_killed_after_its_return_enlists_again_on_a_live_one()
    {
        if (Driver == MySqlDriver.MySqlData && UnderMono)
            Assert.Ignore("Mono's System.Transactions keeps MySql.Data's failed promoter (see MySqlDataAdapter.EnlistsAgainAfterFailure): the error surfaces there, and the scope's Dispose throws inside MySql.Data");
        var pool = CreateStartAgainPool();
        CreateTable();
        var killed = KillTheIdleConnection(pool, ReturnOne(pool));

        long ranOn;
        using (var scope = new TransactionScope())
        {
            using (var connection = pool.Rent())
            {
                Execute(connection, "INSERT INTO start_again (tag) VALUES ('scope')");
                ranOn = ConnectionId(connection);
            }

            scope.Complete();
        }

        var stats = pool.GetStatistics();
        TestContext.Progress.WriteLine($"{Driver}, enlistment on a killed connection: started again {stats.StartedAgain}, evicted {stats.Evicted}; {string.Join(" | ", Log.Messages("TransactionStartedAgain"))}");
        Assert.That(ranOn, Is.Not.EqualTo(killed), "the scope's work ran on a live connection");
        Assert.That(Rows("scope"), Is.EqualTo(1), "the scope committed its row");
        Assert.That((stats.StartedAgain, stats.Evicted), Is.EqualTo((1L, 1L)));
        Eventually(() => pool.GetStatistics().Idle == 1, TimeSpan.FromSeconds(5), "the live connection back in the pool once the scope ended");

        // And the scope that does not complete: the row is rolled back.
        KillTheIdleConnection(pool, ranOn);
        using (new TransactionScope())
        {
            using var connection = pool.Rent();
            Execute(connection, "INSERT INTO start_again (tag) VALUES ('not completed')");
        }

        Assert.That(Rows("not completed"), Is.Zero, "rolled back with its scope");
        Assert.That(pool.GetStatistics().StartedAgain, Is.EqualTo(2));
    }

#if NET
    [Test]
    public async Task A_connection_opened_asynchronously_inside_a_TransactionScope_on_a_killed_connection_enlists_again_on_a_live_one()
    {
        var pool = CreateStartAgainPool();
        CreateTable();
        var killed = KillTheIdleConnection(pool, ReturnOne(pool));

        long ranOn;
        using (var scope = new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
        {
            await using (var connection = await pool.RentAsync())
            {
                await using var insert = connection.CreateCommand();
                insert.CommandText = "INSERT INTO start_again (tag) VALUES ('async scope')";
                await insert.ExecuteNonQueryAsync();
                insert.CommandText = "SELECT CONNECTION_ID()";
                ranOn = Convert.ToInt64(await insert.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
            }

            scope.Complete();
        }

        Assert.That(ranOn, Is.Not.EqualTo(killed), "the scope's work ran on a live connection");
        Assert.That(Rows("async scope"), Is.EqualTo(1), "the scope committed its row");
        Assert.That(pool.GetStatistics().StartedAgain, Is.EqualTo(1));
    }
#endif

    [Test]
    public void An_insert_outside_a_transaction_as_the_first_statement_on_a_killed_connection_surfaces_the_error_and_is_not_repeated()
    {
        var pool = CreateStartAgainPool();
        CreateTable();
        KillTheIdleConnection(pool, ReturnOne(pool));

        var connection = pool.Rent();
        var error = Assert.Catch(() => Execute(connection, "INSERT INTO start_again (tag) VALUES ('autocommit')"))!;
        pool.Return(connection, error);

        TestContext.Progress.WriteLine($"{Driver}, INSERT as the first statement on a killed connection: {InUseFaultTests.Describe(error)}");
        Assert.That(DisconnectClassifier.IsDisconnect(error), Is.True, InUseFaultTests.Describe(error));
        Assert.That(Rows("autocommit"), Is.Zero, "the caller's statement was not repeated");
        Assert.That(pool.GetStatistics().StartedAgain, Is.Zero);
        Assert.That(Request(pool), Is.Null, "the next caller gets a live connection");
    }

    [Test]
    public void A_transaction_whose_second_statement_meets_the_kill_surfaces_the_error_and_commits_nothing()
    {
        var pool = CreateStartAgainPool();
        CreateTable();

        var connection = pool.Rent();
        Exception? error;
        using (var transaction = connection.BeginTransaction())
        {
            Execute(connection, "INSERT INTO start_again (tag) VALUES ('second')", transaction);
            var id = Convert.ToInt64(Scalar(connection, "SELECT CONNECTION_ID()", transaction), System.Globalization.CultureInfo.InvariantCulture);
            KillAndWait(id);
            error = Assert.Catch(() => Execute(connection, "INSERT INTO start_again (tag) VALUES ('second')", transaction));
        }

        pool.Return(connection, error);

        TestContext.Progress.WriteLine($"{Driver}, KILL before a transaction's second statement: {InUseFaultTests.Describe(error!)}");
        Assert.That(DisconnectClassifier.IsDisconnect(error!), Is.True, InUseFaultTests.Describe(error!));
        Assert.That(Rows("second"), Is.Zero, "nothing committed");
        Assert.That(pool.GetStatistics().StartedAgain, Is.Zero);
        Assert.That(Request(pool), Is.Null, "the next caller gets a live connection");
    }

    [Test]
    public async Task Fifty_rounds_of_a_kill_then_a_transaction_give_no_errors()
    {
        var pool = CreateStartAgainPool();
        CreateTable();
        var last = ReturnOne(pool);
        var errors = 0;
        Exception? firstError = null;
        var watch = Stopwatch.StartNew();
        for (var round = 0; round < Rounds && watch.Elapsed < TimeSpan.FromSeconds(90); round++)
        {
            KillTheIdleConnection(pool, last);
            var async = round % 2 == 1;
            try
            {
                last = async ? await UnitOfWorkAsync(pool, round) : UnitOfWork(pool, round);
            }
            catch (Exception e)
            {
                errors++;
                firstError ??= e;
                last = ReturnOne(pool);
            }
        }

        var stats = pool.GetStatistics();
        var rows = Rows("round");
        TestContext.Progress.WriteLine(
            $"{Driver}, {Rounds} rounds of KILL + rent + BEGIN + INSERT + COMMIT (sync and async alternating): {errors} errors, " +
            $"{rows} rows, started again {stats.StartedAgain}, evicted {stats.Evicted}, in {watch.Elapsed.TotalSeconds:F1} s" +
            (firstError is null ? string.Empty : $"; first error: {InUseFaultTests.Describe(firstError)}"));
        Assert.That(errors, Is.Zero, firstError?.ToString());
        Assert.That(rows, Is.EqualTo(Rounds), "every round's row is there, once");
        Assert.That(stats.StartedAgain, Is.EqualTo(Rounds), "every round met its killed connection at BEGIN");
    }

    private static long UnitOfWork(KeepAlivePool pool, int round)
    {
        using var connection = pool.Rent();
        using var transaction = connection.BeginTransaction();
        Execute(connection, $"INSERT INTO start_again (tag, round) VALUES ('round', {round.ToString(System.Globalization.CultureInfo.InvariantCulture)})", transaction);
        var id = Convert.ToInt64(Scalar(connection, "SELECT CONNECTION_ID()", transaction), System.Globalization.CultureInfo.InvariantCulture);
        transaction.Commit();
        return id;
    }

#if NET
    private static async Task<long> UnitOfWorkAsync(KeepAlivePool pool, int round)
    {
        await using var connection = await pool.RentAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"INSERT INTO start_again (tag, round) VALUES ('round', {round.ToString(System.Globalization.CultureInfo.InvariantCulture)})";
        await command.ExecuteNonQueryAsync();
        command.CommandText = "SELECT CONNECTION_ID()";
        var id = Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        await transaction.CommitAsync();
        return id;
    }
#else
    /// <summary>.NET Framework's DbConnection has no BeginTransactionAsync: the synchronous unit of work.</summary>
    private static Task<long> UnitOfWorkAsync(KeepAlivePool pool, int round) => Task.FromResult(UnitOfWork(pool, round));
#endif

    /// <summary>One connection, handed out unchecked inside a long bypass window, with no socket check and no keepalive.</summary>
    private KeepAlivePool CreateStartAgainPool() => CreatePool(o =>
    {
        o.MaxPoolSize = 1;
        o.ValidationBypassWindow = TimeSpan.FromSeconds(5);
        o.KeepAliveInterval = TimeSpan.Zero;
        o.SocketCheck = false;
    });

    /// <summary>Rents the pool's connection and gives it back; its server thread id.</summary>
    private static long ReturnOne(KeepAlivePool pool)
    {
        using var connection = pool.Rent();
        return ConnectionId(connection);
    }

    /// <summary>Kills <paramref name="id"/>, idle in <paramref name="pool"/>, and waits until the server has let it go (its close has been sent).</summary>
    private long KillTheIdleConnection(KeepAlivePool pool, long id)
    {
        Settled(pool);
        Assert.That(pool.GetStatistics().Idle, Is.EqualTo(1), "the connection is idle in the pool");
        KillAndWait(id);
        return id;
    }

    private void KillAndWait(long id)
    {
        Admin.Kill(id);
        Eventually(() => !Admin.ConnectionIds().Contains(id), TimeSpan.FromSeconds(5), $"the server let connection {id} go");
    }

    private void CreateTable()
    {
        Admin.Execute("DROP TABLE IF EXISTS start_again");
        Admin.Execute("CREATE TABLE start_again (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(32) NOT NULL, round INT NULL) ENGINE=InnoDB");
    }

    private long Rows(string tag) => Admin.Count($"SELECT COUNT(*) FROM start_again WHERE tag = '{tag}'");

    private static void Execute(DbConnection connection, string sql, DbTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.ExecuteNonQuery();
    }
}
