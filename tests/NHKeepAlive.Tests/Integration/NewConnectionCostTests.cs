using System;
using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Threading;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// What the pool asks the server, beyond the driver's own open, for a new physical connection and its first loan
/// and return (issue 19: a tenant's first sessions): counted on the server, by the session's own status counters
/// (<c>Questions</c>: statements, a multi-statement counting each; <c>Com_admin_commands</c>: pings and other
/// commands), against a connection the driver opens by itself with the same string. Exact counts, no timing.
/// <list type="bullet">
/// <item>MySqlConnector: the first connection to a server asks, in one query, the isolation level sessions open with
/// and the <c>wait_timeout</c>; every later one, in the same pool or another pool of a set on the same server, asks
/// nothing.</item>
/// <item>MySql.Data: every connection turns on <c>session_track_state_change</c> (a session variable), in one round
/// trip of two statements: with the first connection the other one reads the character sets (for the restore after a
/// reset) and the <c>wait_timeout</c>; after it, <c>DO 0</c>.</item>
/// </list>
/// A loan and its return ask nothing on either driver (no ping, no reset: the session stayed clean).
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class NewConnectionCostTests(MySqlDriver driver) : IntegrationTest(driver)
{
    private const string SecondDatabase = "nhk_test_tenant_b";

    /// <summary>Statements the pool adds to the first connection to a server (one round trip).</summary>
    private long FirstConnection => Driver == MySqlDriver.MySqlData ? 2 : 1;

    /// <summary>Statements the pool adds to every later connection (MySql.Data: one round trip; MySqlConnector: none).</summary>
    private long LaterConnection => Driver == MySqlDriver.MySqlData ? 2 : 0;

    [SetUp]
    public void ForgetWhatEarlierTestsLearned()
    {
        SharedServerFacts.Forget();
        Admin.Execute($"CREATE DATABASE IF NOT EXISTS {SecondDatabase}");
    }

    [Test]
    public void A_pool_asks_a_new_server_once_and_its_later_connections_nothing_more_than_their_setup()
    {
        var waitTimeout = Admin.Count("SELECT @@GLOBAL.wait_timeout");
        var driverAlone = DriverOwnOpen(TestServer.ConnectionString(Driver));
        using var pool = CreatePool(o => o.MaxPoolSize = 2);

        var a = pool.Rent();
        var aPhysical = a.Physical();
        var first = Counters(a);
        Assert.That((first.Statements - driverAlone.Statements, first.Commands - driverAlone.Commands), Is.EqualTo((FirstConnection, 0L)),
            "statements and pings the pool added to the driver's own open of the first connection");
        pool.Return(a);
        Settled(pool);

        var again = pool.Rent();
        Assert.That(again.Physical(), Is.SameAs(aPhysical));
        var afterLoan = Counters(again);
        Assert.That((afterLoan.Statements - first.Statements, afterLoan.Commands - first.Commands), Is.EqualTo((1L, 0L)),
            "between the two reads, the second read alone: the return and the next checkout asked nothing (no reset, no ping)");

        var b = pool.Rent(); // a second physical connection: the first is on loan
        Assert.That(b.Physical(), Is.Not.SameAs(aPhysical));
        var second = Counters(b);
        Assert.That((second.Statements - driverAlone.Statements, second.Commands - driverAlone.Commands), Is.EqualTo((LaterConnection, 0L)),
            "the pool's second connection: what it learned with the first is not asked again");
        pool.Return(b);
        pool.Return(again);

        var statistics = pool.GetStatistics();
        Assert.That(statistics.ServerWaitTimeout, Is.EqualTo(TimeSpan.FromSeconds(waitTimeout)), "the wait_timeout, read with the session setup");
        Assert.That(statistics.KeepAliveInterval, Is.EqualTo(ServerFacts.KeepAliveIntervalFor(KeepAliveOptions.DefaultKeepAliveInterval, TimeSpan.FromSeconds(waitTimeout))));
    }

    [Test]
    public void A_new_pool_of_a_set_on_a_server_another_pool_asked_already_asks_nothing_more_than_its_setup()
    {
        var waitTimeout = Admin.Count("SELECT @@GLOBAL.wait_timeout");
        var tenantA = TestServer.ConnectionString(Driver);
        var tenantB = MySqlConnectionStrings.WithDatabase(tenantA, SecondDatabase, Driver);
        var driverAloneA = DriverOwnOpen(tenantA);
        var driverAloneB = DriverOwnOpen(tenantB);
        using var set = new KeepAlivePoolSet(new KeepAliveOptions { Driver = Driver, ConnectionTimeout = TimeSpan.FromSeconds(10), ShutdownGracePeriod = TimeSpan.Zero }, Timeout.InfiniteTimeSpan);

        using (var a = set.Rent(tenantA))
        {
            var counted = Counters(a);
            Assert.That((counted.Statements - driverAloneA.Statements, counted.Commands - driverAloneA.Commands), Is.EqualTo((FirstConnection, 0L)), "tenant A's first session");
        }

        using (var b = set.Rent(tenantB))
        {
            var counted = Counters(b);
            Assert.That((counted.Statements - driverAloneB.Statements, counted.Commands - driverAloneB.Commands), Is.EqualTo((LaterConnection, 0L)),
                "tenant B's first session: its pool takes what tenant A's learned from the same server");
            Assert.That(Scalar(b, "SELECT DATABASE()"), Is.EqualTo(SecondDatabase));
        }

        Assert.That(set.PoolFor(tenantB).GetStatistics().ServerWaitTimeout, Is.EqualTo(TimeSpan.FromSeconds(waitTimeout)), "tenant B's pool knows the wait_timeout all the same");
    }

    /// <summary>The nodes of a host list may differ (a rolling upgrade): each connection there learns for itself, beside its node check.</summary>
    [Test]
    public void Every_connection_of_a_host_list_learns_for_itself()
    {
#pragma warning disable CA1307 // .NET Framework's Replace has no StringComparison; an ordinal replace either way.
        var hostList = TestServer.ConnectionString(Driver).Replace($"Server={TestServer.Host};", $"Server={TestServer.Host},localhost;");
#pragma warning restore CA1307
        var driverAlone = DriverOwnOpen(TestServer.ConnectionString(Driver));
        using var pool = CreatePool(o =>
        {
            o.ConnectionString = hostList;
            o.MaxPoolSize = 2;
        });

        using var a = pool.Lease();
        using var b = pool.Lease();
        foreach (var lease in new[] { a, b })
        {
            var counted = Counters(lease.Connection);
            Assert.That((counted.Statements - driverAlone.Statements, counted.Commands - driverAlone.Commands), Is.EqualTo((FirstConnection + 1, 0L)),
                "the node check, and the session setup of a first connection");
        }
    }

    /// <summary>A connection readied from what an earlier connection learned keeps every guarantee of session hygiene.</summary>
    [Test]
    public void A_connection_readied_from_what_another_learned_still_leaves_nothing_to_the_next_caller()
    {
        var tenantA = TestServer.ConnectionString(Driver, extra: "Allow User Variables=true");
        var tenantB = MySqlConnectionStrings.WithDatabase(tenantA, SecondDatabase, Driver);
        using var set = new KeepAlivePoolSet(new KeepAliveOptions { Driver = Driver, MaxPoolSize = 1, ConnectionTimeout = TimeSpan.FromSeconds(10), ShutdownGracePeriod = TimeSpan.Zero }, Timeout.InfiniteTimeSpan);
        using (var a = set.Rent(tenantA))
            Scalar(a, "SELECT 1");
        var pool = set.PoolFor(tenantB);
        string? characterSet;
        using (var raw = DriverConnection(tenantB))
            characterSet = Text(raw, "SELECT CAST(CONCAT_WS(' ', @@character_set_client, @@collation_connection, IFNULL(@@character_set_results, 'NULL')) AS CHAR)");

        // A unit of work at the default isolation level, as NHibernate runs it: the session stays as it opened, no reset.
        var unit = set.Rent(tenantB);
        var physical = unit.Physical();
        using (var transaction = unit.BeginTransaction())
        {
            Scalar(unit, "SELECT 1", transaction);
            transaction.Commit();
        }

        unit.Dispose();
        Settled(pool);
        Assert.That(pool.GetStatistics().SessionResets, Is.Zero, "a unit of work at the default isolation level leaves the session clean");

        // A caller that changes its session: a user variable, a transaction at another isolation level.
        var dirty = set.Rent(tenantB);
        Assert.That(dirty.Physical(), Is.SameAs(physical));
        using (var transaction = dirty.BeginTransaction(IsolationLevel.ReadCommitted))
        {
            Scalar(dirty, "SELECT 1", transaction);
            transaction.Commit();
        }

        Scalar(dirty, "SET @secret = 'A'");
        dirty.Dispose();
        Settled(pool);

        using var next = set.Rent(tenantB);
        Assert.That(next.Physical(), Is.SameAs(physical));
        Assert.That(Text(next, "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)"), Is.EqualTo("none"));
        Assert.That(Text(next, "SELECT @@SESSION.tx_isolation = @@GLOBAL.tx_isolation"), Is.EqualTo("1"));
        Assert.That(Text(next, "SELECT CAST(CONCAT_WS(' ', @@character_set_client, @@collation_connection, IFNULL(@@character_set_results, 'NULL')) AS CHAR)"), Is.EqualTo(characterSet),
            "the character sets the driver set at open, as a connection the driver opens by itself has them");
        Assert.That(Text(next, "SELECT 'naïve ☃'"), Is.EqualTo("naïve ☃"));
    }

    /// <summary>The session's own counters: statements so far (this query included), and pings and other commands.</summary>
    private static (long Statements, long Commands) Counters(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT CAST(SUM(IF(VARIABLE_NAME = 'QUESTIONS', VARIABLE_VALUE, 0)) AS SIGNED), CAST(SUM(IF(VARIABLE_NAME = 'COM_ADMIN_COMMANDS', VARIABLE_VALUE, 0)) AS SIGNED) FROM information_schema.SESSION_STATUS";
        using var reader = command.ExecuteReader();
        Assert.That(reader.Read(), Is.True);
        return (Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture), Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture));
    }

    /// <summary>The counters of a connection the driver opens by itself (no pool of its own, nor NHKeepAlive's), right after its open.</summary>
    private (long Statements, long Commands) DriverOwnOpen(string connectionString)
    {
        using var connection = DriverConnection(connectionString);
        return Counters(connection);
    }

    private DbConnection DriverConnection(string connectionString)
    {
        DbConnection connection = Driver == MySqlDriver.MySqlData
            ? new MySql.Data.MySqlClient.MySqlConnection(connectionString + ";Pooling=false")
            : new MySqlConnector.MySqlConnection(connectionString + ";Pooling=false");
        connection.Open();
        return connection;
    }

    private static string? Text(DbConnection connection, string sql) => Convert.ToString(Scalar(connection, sql), CultureInfo.InvariantCulture);
}
