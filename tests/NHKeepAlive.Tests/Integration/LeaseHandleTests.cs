using System;
using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using Dapper;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// The handle a caller gets (<see cref="KeepAliveConnection"/>), against the real server: once given back it
/// refuses every use, so a captured reference never reaches the next caller's session; one the application
/// drops is taken back after the garbage collector collects it; and ADO.NET code (Dapper,
/// <see cref="KeepAliveDataSource"/>) opens and closes it as it does the driver's own connection.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class LeaseHandleTests(MySqlDriver driver) : IntegrationTest(driver)
{
    public enum GivenBackBy
    {
        Return,
        Dispose,
        Close,
    }

    private const int MaxPoolSize = 4;

    [SetUp]
    public void CreateTable()
    {
        Admin.Execute("CREATE TABLE IF NOT EXISTS lease_rows (id INT PRIMARY KEY, who VARCHAR(40)) ENGINE=InnoDB");
        Admin.Execute("DELETE FROM lease_rows");
    }

    [TestCase(GivenBackBy.Return)]
    [TestCase(GivenBackBy.Dispose)]
    [TestCase(GivenBackBy.Close)]
    public void A_handle_given_back_refuses_every_use_and_never_reaches_the_next_callers_session(GivenBackBy how)
    {
        using var pool = CreatePool(o =>
        {
            o.PoolName = $"handles-{how}";
            o.MaxPoolSize = 1; // the next caller gets the same physical connection
        });
        var handle = (KeepAliveConnection)pool.Rent();
        var before = handle.CreateCommand();
        before.CommandText = "SELECT CONNECTION_ID()";
        var id = Convert.ToInt64(before.ExecuteScalar(), CultureInfo.InvariantCulture);
        var transaction = handle.BeginTransaction();
        Assert.That(transaction, Is.TypeOf<KeepAliveTransaction>());
        Scalar(handle, "INSERT INTO lease_rows VALUES (1, 'given back')", transaction);

        switch (how)
        {
            case GivenBackBy.Return:
                pool.Return(handle);
                break;
            case GivenBackBy.Dispose:
                handle.Dispose();
                break;
            case GivenBackBy.Close:
                handle.Close();
                break;
        }

        Assert.That(handle.State, Is.EqualTo(ConnectionState.Closed));

        // The next caller now has that session, inside a transaction of its own.
        using var next = pool.Lease();
        Assert.That(ConnectionId(next.Connection), Is.EqualTo(id), "the same session now serves another caller");
        var own = next.Connection.BeginTransaction();
        Scalar(next.Connection, "INSERT INTO lease_rows VALUES (2, 'next caller, uncommitted')", own);

        // A new constraint for each assertion: NUnit's constraint expressions must not be reused.
        NUnit.Framework.Constraints.IResolveConstraint Refused() => Throws.TypeOf<ObjectDisposedException>().With.Message.Contains($"pool '{pool.Name}'");
        using (Assert.EnterMultipleScope()) // every refusal checked, and what reached the next caller shown
        {
            Assert.That(() => before.ExecuteScalar(), Refused(), "a command created before the return");
            Assert.That(() => before.ExecuteScalarAsync().GetAwaiter().GetResult(), Refused(), "a command created before the return, async");
            Assert.That(() => before.ExecuteReader().Dispose(), Refused(), "a reader of a command created before the return");
            Assert.That(
                () =>
                {
                    using var after = handle.CreateCommand();
                    after.CommandText = "SELECT CONNECTION_ID()";
                    return after.ExecuteScalar();
                },
                Refused(),
                "a command created after the return");
            Assert.That(() => handle.BeginTransaction(), Refused(), "a transaction begun after the return");
            Assert.That(() => transaction.Commit(), Refused(), "the transaction begun before the return");
            Assert.That(() => transaction.Rollback(), Refused(), "the transaction begun before the return");
            Assert.That(() => handle.InnerConnection, Refused(), "the driver's connection");
            Assert.That(() => handle.ChangeDatabase("mysql"), Refused());

            // Nothing of the above reached the next caller's session: its transaction is still open and its own.
            Assert.That(Convert.ToInt64(Scalar(next.Connection, "SELECT @@in_transaction", own), CultureInfo.InvariantCulture), Is.EqualTo(1), "the next caller's transaction is still open");
            Assert.That(Scalar(next.Connection, "SELECT DATABASE()", own), Is.EqualTo(TestServer.Database));
            own.Rollback();
            Assert.That(Admin.Count("SELECT COUNT(*) FROM lease_rows"), Is.Zero, "the first transaction was rolled back at the return, and nothing committed the next caller's");
        }
    }

    [Test]
    public void A_transaction_disposed_after_its_connection_was_given_back_leaves_the_next_callers_transaction_alone()
    {
        using var pool = CreatePool(o => o.MaxPoolSize = 1);
        var handle = pool.Rent();
        var transaction = handle.BeginTransaction();
        Scalar(handle, "INSERT INTO lease_rows VALUES (1, 'given back')", transaction);
        pool.Return(handle); // as code does whose connection goes back before its transaction's using block ends

        using var next = pool.Lease();
        using var own = next.Connection.BeginTransaction();
        Scalar(next.Connection, "INSERT INTO lease_rows VALUES (2, 'next caller')", own);

        Assert.That(() => transaction.Dispose(), Throws.Nothing, "Dispose never throws");
        Assert.That(Convert.ToInt64(Scalar(next.Connection, "SELECT @@in_transaction", own), CultureInfo.InvariantCulture), Is.EqualTo(1), "the next caller's transaction is still open");
        own.Commit();
        Assert.That(Admin.ConnectionIdsOf("SELECT id FROM lease_rows ORDER BY id"), Is.EqualTo(new long[] { 2 }), "the next caller's row committed, the first caller's rolled back");
    }

    [Test]
    public void Dropped_handles_are_taken_back_after_a_collection_and_their_open_transaction_is_rolled_back()
    {
        using var pool = CreatePool(o =>
        {
            o.MaxPoolSize = MaxPoolSize;
            o.ConnectionTimeout = TimeSpan.FromSeconds(5);
        });

        // On a thread of its own too: nothing on this thread's stack (Mono scans it conservatively) keeps a handle alive.
        var renter = new Thread(() => RentAndDrop(pool, MaxPoolSize));
        renter.Start();
        Assert.That(renter.Join(TimeSpan.FromSeconds(30)), Is.True, "the renter finished");
        Assert.That(pool.GetStatistics().Active, Is.EqualTo(MaxPoolSize), "every connection on loan to a handle nobody holds");

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        for (var i = 0; i < 2 * MaxPoolSize; i++)
        {
            var watch = Stopwatch.StartNew();
            var connection = pool.Rent();
            watch.Stop();
            try
            {
                Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)), $"rent {i}: the dropped connections came back in moments");
                Assert.That(Convert.ToInt64(Scalar(connection, "SELECT COUNT(*) FROM lease_rows"), CultureInfo.InvariantCulture), Is.Zero, $"rent {i}: the dropped transaction's row is not visible");
                Assert.That(Convert.ToInt64(Scalar(connection, "SELECT @@in_transaction"), CultureInfo.InvariantCulture), Is.Zero, $"rent {i}: no transaction left open");
            }
            finally
            {
                pool.Return(connection);
            }
        }

        Assert.That(Admin.Count("SELECT COUNT(*) FROM lease_rows"), Is.Zero, "rolled back, never committed");
        Settled(pool);
        var stats = pool.GetStatistics();
        Assert.That((stats.Recovered, stats.Active), Is.EqualTo(((long)MaxPoolSize, 0)), "every dropped connection taken back");
        Assert.That(Log.Messages("DroppedConnectionRecovered"), Has.Length.EqualTo(MaxPoolSize));
        Eventually(() => Admin.ConnectionIds().Count == pool.GetStatistics().Total, TimeSpan.FromSeconds(10), "the server's connections equal the pool's accounting");
    }

    [Test]
    public void A_command_captured_across_a_return_never_reaches_another_callers_session()
    {
        const int threads = 8;
        const int rounds = 2_000; // a few seconds on either runtime; the time limit below bounds a slow machine
        using var pool = CreatePool(o => o.MaxPoolSize = MaxPoolSize); // 8 callers over 4 sessions: each is handed on constantly
        var deadline = Stopwatch.StartNew();
        var limit = TimeSpan.FromSeconds(60);
        var done = 0;
        var refusals = 0;
        var wrong = new ConcurrentQueue<string>();
        var expected = $"pool '{pool.Name}'";

        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            for (var round = 0; round < rounds && deadline.Elapsed < limit; round++)
            {
                var connection = pool.Rent();
                DbCommand command;
                try
                {
                    command = connection.CreateCommand();
                    command.CommandText = "SELECT CONNECTION_ID()";
                    command.ExecuteScalar();
                }
                finally
                {
                    pool.Return(connection);
                }

                try
                {
                    var leaked = command.ExecuteScalar();
                    wrong.Enqueue($"thread {t} round {round}: ran on session {leaked} after the return");
                }
                catch (ObjectDisposedException e) when (e.Message.Contains(expected))
                {
                    Interlocked.Increment(ref refusals);
                }
#pragma warning disable CA1031 // Any other outcome is what the test reports.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    wrong.Enqueue($"thread {t} round {round}: {e.GetType().Name}: {e.Message}");
                }

                command.Dispose();
                Interlocked.Increment(ref done);
            }
        }) { IsBackground = true }).ToList();
        workers.ForEach(w => w.Start());
        Assert.That(workers.All(w => w.Join(limit + TimeSpan.FromSeconds(30))), Is.True, "every caller finished");

        TestContext.Progress.WriteLine($"{Driver}: {done} rounds by {threads} callers in {deadline.Elapsed.TotalSeconds:0.0} s");
        Assert.That(wrong.Take(5), Is.Empty, $"{wrong.Count} captured commands did something else than refuse");
        Assert.That(refusals, Is.EqualTo(done), "every captured command refused");
        Assert.That(done, Is.GreaterThanOrEqualTo(threads * 200), "enough rounds ran within the time limit to mean something");
        var stats = pool.GetStatistics();
        Assert.That((stats.Active, stats.Recovered), Is.EqualTo((0, 0L)));
    }

    [Test]
    public async Task KeepAliveDataSource_serves_Dapper_with_connections_it_opens_and_closes_itself()
    {
        var options = new KeepAliveOptions
        {
            ConnectionString = TestServer.ConnectionString(Driver),
            Driver = Driver,
            LoggerFactory = Log,
            MaxPoolSize = MaxPoolSize,
            ConnectionTimeout = TimeSpan.FromSeconds(10),
            ShutdownGracePeriod = TimeSpan.Zero,
        };
        using (var ds = new KeepAliveDataSource(options))
        {
            var pool = ds.Pool;
            void AllIdle(string after) => Eventually(() => pool.GetStatistics() is { Active: 0, Checking: 0, Opening: 0 }, TimeSpan.FromSeconds(5), $"every connection idle after {after}");

            using (var connection = ds.CreateConnection())
            {
                Assert.That(connection.State, Is.EqualTo(ConnectionState.Closed), "created closed");
                Assert.That(KeepAlivePool.OwnerOf(connection), Is.SameAs(pool));

                var inserted = connection.Execute("INSERT INTO lease_rows (id, who) VALUES (@Id, @Who)", new[] { new Row { Id = 1, Who = "one" }, new Row { Id = 2, Who = "two" } });
                Assert.That(inserted, Is.EqualTo(2));
                Assert.That(connection.State, Is.EqualTo(ConnectionState.Closed), "Dapper closed what it opened");
                AllIdle("Execute");

                var rows = connection.Query<Row>("SELECT id AS Id, who AS Who FROM lease_rows ORDER BY id").ToList();
                Assert.That(rows.Select(r => (r.Id, r.Who)), Is.EqualTo(new[] { (1, "one"), (2, "two") }));
                Assert.That(connection.State, Is.EqualTo(ConnectionState.Closed));
                AllIdle("a buffered Query");

                // Unbuffered: Dapper runs the reader with CommandBehavior.CloseConnection; closing the reader gives the connection back.
                var streamed = connection.Query<Row>("SELECT id AS Id, who AS Who FROM lease_rows ORDER BY id", buffered: false).Select(r => r.Id).ToList();
                Assert.That(streamed, Is.EqualTo(new[] { 1, 2 }));
                Assert.That(connection.State, Is.EqualTo(ConnectionState.Closed), "the reader closed the connection");
                AllIdle("an unbuffered Query");

                var asyncRows = (await connection.QueryAsync<Row>("SELECT id AS Id, who AS Who FROM lease_rows WHERE id = @Id", new { Id = 2 })).ToList();
                Assert.That(asyncRows.Single().Who, Is.EqualTo("two"));
                Assert.That(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM lease_rows"), Is.EqualTo(2));
                Assert.That(connection.State, Is.EqualTo(ConnectionState.Closed));
                AllIdle("QueryAsync and ExecuteScalarAsync");
            }

            using (var connection = ds.OpenConnection())
            {
                Assert.That(connection.State, Is.EqualTo(ConnectionState.Open));
                using (var transaction = connection.BeginTransaction())
                {
                    connection.Execute("INSERT INTO lease_rows (id, who) VALUES (@Id, @Who)", new Row { Id = 3, Who = "committed" }, transaction);
                    Assert.That(connection.QuerySingle<long>("SELECT COUNT(*) FROM lease_rows", transaction: transaction), Is.EqualTo(3));
                    transaction.Commit();
                }

                using (var transaction = connection.BeginTransaction())
                {
                    connection.Execute("INSERT INTO lease_rows (id, who) VALUES (@Id, @Who)", new Row { Id = 4, Who = "rolled back" }, transaction);
                    transaction.Rollback();
                }

                Assert.That(connection.State, Is.EqualTo(ConnectionState.Open), "Dapper leaves an open connection open");
            }

            AllIdle("OpenConnection and its transactions");
            Assert.That(Admin.Count("SELECT COUNT(*) FROM lease_rows WHERE id = 3"), Is.EqualTo(1), "committed");
            Assert.That(Admin.Count("SELECT COUNT(*) FROM lease_rows WHERE id = 4"), Is.Zero, "rolled back");

#if NET
            using (var command = ds.CreateCommand("SELECT 1"))
                Assert.That(Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture), Is.EqualTo(1));
            using (var command = ds.CreateCommand("SELECT id FROM lease_rows ORDER BY id"))
            using (var reader = command.ExecuteReader())
            {
                Assert.That(reader.Read() && reader.GetInt32(0) == 1, Is.True);
            }

            AllIdle("the data source's own commands");
#endif

            var stats = pool.GetStatistics();
            Assert.That(stats.Recovered, Is.Zero, "every connection was given back, none dropped");
            Assert.That(stats.Total, Is.InRange(1, MaxPoolSize));
            Eventually(() => Admin.ConnectionIds().Count == pool.GetStatistics().Total, TimeSpan.FromSeconds(10), "the server's connections equal the pool's accounting");
        }

        Eventually(() => Admin.ConnectionIds().Count == 0, TimeSpan.FromSeconds(5), "disposing the data source closed its pool's connections");
    }

    /// <summary>Rents <paramref name="count"/> handles and drops them, one inside an open transaction with an insert; nothing outside this method refers to them.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RentAndDrop(KeepAlivePool pool, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var connection = pool.Rent();
            Scalar(connection, "SELECT 1");
            if (i == 0)
            {
                var transaction = connection.BeginTransaction();
                Scalar(connection, "INSERT INTO lease_rows VALUES (100, 'dropped in a transaction')", transaction);
            }
        }
    }

    /// <summary>A row as Dapper maps it.</summary>
    public sealed class Row
    {
        public int Id { get; set; }

        public string Who { get; set; } = string.Empty;
    }
}
