using System;
using System.Collections.Generic;
using System.Data.Common;
using System.Globalization;
using System.Linq;
using System.Threading.Tasks;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// With a pool of one connection, caller A changes its session and returns the connection; caller B
/// takes the same physical connection and must find a fresh session.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class SessionResetTests(MySqlDriver driver) : IntegrationTest(driver)
{
    /// <summary>What A leaves behind, and what B must see instead: (name, A's statements, B's probe, what a fresh session answers).</summary>
    private static IEnumerable<TestCaseData> Leftovers()
    {
        yield return Row("autocommit off", ["SET autocommit = 0"], "SELECT @@autocommit", "1");
        yield return Row("database changed with USE", ["USE mysql"], "SELECT DATABASE()", TestServerDatabase);
        yield return Row("user variable", ["SET @secret = 'A'"], "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)", "none");
        yield return Row("named lock", ["SELECT GET_LOCK('nhk_lock', 0)"], "SELECT IFNULL(IS_USED_LOCK('nhk_lock'), 0) = CONNECTION_ID()", "0");
        yield return Row("transaction begun in plain SQL", ["START TRANSACTION", "INSERT INTO hygiene VALUES (7, 'A')"], "SELECT @@in_transaction", "0");
        yield return Row("temporary table", ["CREATE TEMPORARY TABLE nhk_tmp (a INT)"], "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'nhk_tmp' AND table_type LIKE '%TEMPORARY%'", "0");
        yield return Row("sql_mode", ["SET SESSION sql_mode = 'ANSI_QUOTES'"], "SELECT @@SESSION.sql_mode = @@GLOBAL.sql_mode", "1");
        yield return Row("isolation level", ["SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE"], "SELECT @@SESSION.tx_isolation = @@GLOBAL.tx_isolation", "1");
        yield return Row("time zone", ["SET time_zone = '+05:00'"], "SELECT @@SESSION.time_zone = @@GLOBAL.time_zone", "1");
    }

    private const string TestServerDatabase = "nhk_test";

    private static TestCaseData Row(string name, string[] a, string probe, string fresh) =>
        new TestCaseData(a, probe, fresh).SetArgDisplayNames(name);

    [SetUp]
    public void CreateTable()
    {
        Admin.Execute("CREATE TABLE IF NOT EXISTS hygiene (id INT PRIMARY KEY, who VARCHAR(40)) ENGINE=InnoDB");
        Admin.Execute("DELETE FROM hygiene");
    }

    [TestCaseSource(nameof(Leftovers))]
    public void With_the_policy_always_the_next_caller_finds_a_fresh_session(string[] a, string probe, string fresh) =>
        NextCallerFindsAFreshSession(SessionResetPolicy.Always, a, probe, fresh, then: null);

    /// <summary>The default: the pool sees each statement (MySqlConnector's tracing, NHKeepAlive.MySqlData's interceptor for MySql.Data) and the server's status flags where the driver keeps them.</summary>
    [Category(DriverContractTests.Contract)]
    [TestCaseSource(nameof(Leftovers))]
    public void With_the_default_policy_a_change_never_reaches_the_next_caller(string[] a, string probe, string fresh)
    {
        NextCallerFindsAFreshSession(SessionResetPolicy.Auto, a, probe, fresh, then: null);
    }

    [Test]
    public void Autocommit_left_off_is_seen_by_the_default_policy_even_after_later_statements()
    {
        NextCallerFindsAFreshSession(SessionResetPolicy.Auto, ["SET autocommit = 0"], "SELECT @@autocommit", "1", then: "SELECT 1");
    }

    [Test]
    public void A_plain_sql_transaction_is_ended_by_the_default_policy_even_after_later_statements()
    {
        NextCallerFindsAFreshSession(SessionResetPolicy.Auto, ["START TRANSACTION", "INSERT INTO hygiene VALUES (8, 'A')"], "SELECT @@in_transaction", "0", then: "SELECT 1");
        Assert.That(Admin.Count("SELECT COUNT(*) FROM hygiene WHERE id = 8"), Is.Zero, "A's uncommitted row was never committed");
    }

    [TestCase(SessionResetPolicy.Auto)]
    [TestCase(SessionResetPolicy.Always)]
    public void The_write_of_a_caller_after_one_that_left_autocommit_off_is_committed(SessionResetPolicy policy)
    {
        using var pool = PoolOfOne(policy);
        var a = pool.Rent();
        var aPhysical = a.Physical();
        Scalar(a, "SET autocommit = 0");
        pool.Return(a);

        var b = pool.Rent();
        Assert.That(b.Physical(), Is.SameAs(aPhysical));
        Scalar(b, "INSERT INTO hygiene VALUES (42, 'B')");
        pool.Return(b);

        Assert.That(Admin.Count("SELECT COUNT(*) FROM hygiene WHERE id = 42"), Is.EqualTo(1), "B's row is visible from another connection: committed");
    }

    [Test]
    public void With_the_policy_never_session_state_does_reach_the_next_caller()
    {
        using var pool = PoolOfOne(SessionResetPolicy.Never);
        var a = pool.Rent();
        Scalar(a, "SET time_zone = '+05:00'");
        pool.Return(a);

        var b = pool.Rent();
        Assert.That(Scalar(b, "SELECT @@SESSION.time_zone"), Is.EqualTo("+05:00"), "as named: nothing is reset");
        pool.Return(b);
        Assert.That(pool.GetStatistics().SessionResets, Is.Zero);
    }

    [Category(DriverContractTests.Contract)]
    [Test]
    public void A_clean_return_costs_no_round_trip_where_the_driver_can_tell_and_the_character_set_survives_a_reset()
    {
        using var pool = PoolOfOne(SessionResetPolicy.Auto);
        pool.Return(pool.Rent()); // opened, and set up for resets
        Settled(pool);
        var resetsBefore = pool.GetStatistics().SessionResets;
        var questions = ServerQuestions();

        for (var i = 0; i < 20; i++)
        {
            var c = pool.Rent();
            Scalar(c, "SELECT 1");
            pool.Return(c);
        }

        Settled(pool);
        var sent = ServerQuestions() - questions - 1; // less the admin's own query
        var resets = pool.GetStatistics().SessionResets - resetsBefore;
        TestContext.Out.WriteLine($"{Driver}: 20 clean loans sent {sent} statements beyond the admin's, {resets} resets");
        Assert.That((sent, resets), Is.EqualTo((20L, 0L)), Driver == MySqlDriver.MySqlData
            ? "the 20 SELECTs and nothing else: the server's status flags said the sessions were clean"
            : "the 20 SELECTs and nothing else: every statement MySqlConnector traced was one that leaves the session clean");

        var after = pool.Rent();
        Assert.That(Scalar(after, "SELECT CAST(@@character_set_client AS CHAR)"), Is.EqualTo(Scalar(after, "SELECT CAST(@@character_set_connection AS CHAR)")));
        Assert.That(Scalar(after, "SELECT 'naïve ☃'"), Is.EqualTo("naïve ☃"), "text survives the reset both ways");
        pool.Return(after);
    }

    [Test]
    public void A_change_followed_by_other_statements_is_seen_when_each_command_goes_through_EnsureAlive_as_with_NHibernate()
    {
        using var pool = PoolOfOne(SessionResetPolicy.Auto);
        var a = pool.Rent();
        var aPhysical = a.Physical();
        foreach (var sql in new[] { "SET @secret = 'A'", "SELECT 1", "SELECT 2" })
        {
            pool.EnsureAlive(a, inTransaction: false); // what the NHibernate drivers call before every command
            Scalar(a, sql);
        }

        pool.Return(a);

        var b = pool.Rent();
        Assert.That(b.Physical(), Is.SameAs(aPhysical));
        Assert.That(Scalar(b, "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)"), Is.EqualTo("none"));
        pool.Return(b);
    }

    /// <summary>Every statement is seen (MySqlConnector's tracing, the interceptor on MySql.Data), so a change is found wherever it falls in the loan, without EnsureAlive.</summary>
    [Category(DriverContractTests.Contract)]
    [TestCase("SET @secret = 'A'", "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)", "none")]
    [TestCase("SELECT @secret := 'A'", "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)", "none")]
    [TestCase("SELECT 'A' INTO @secret", "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)", "none")]
    [TestCase("SELECT 1; SET @secret = 'A'", "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)", "none")]
    [TestCase("/*!40101 SET @secret = 'A' */", "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)", "none")]
    [TestCase("SELECT GET_LOCK('nhk_lock', 0)", "SELECT IFNULL(IS_USED_LOCK('nhk_lock'), 0) = CONNECTION_ID()", "0")]
    public async Task A_change_followed_by_other_statements_is_seen_by_the_default_policy(string change, string probe, string fresh)
    {
        using var pool = PoolOfOne(SessionResetPolicy.Auto);
        var a = await pool.RentAsync();
        var aPhysical = a.Physical();
        Scalar(a, change);
        Scalar(a, "SELECT 1");
        using (var command = a.CreateCommand())
        {
            command.CommandText = "SELECT 2";
            await command.ExecuteScalarAsync();
        }

        pool.Return(a);

        var b = pool.Rent();
        Assert.That(b.Physical(), Is.SameAs(aPhysical));
        Assert.That(Convert.ToString(Scalar(b, probe), CultureInfo.InvariantCulture), Is.EqualTo(fresh));
        pool.Return(b);
    }

    /// <summary>The pool's own validation query, run at every checkout here, is no caller's change: clean loans stay unreset.</summary>
    [Test]
    public void The_pools_own_validation_query_costs_no_reset()
    {
        using var pool = CreatePool(o =>
        {
            o.MaxPoolSize = 1;
            o.ValidationQuery = "DO 1";
            o.ValidationBypassWindow = TimeSpan.Zero;
        });
        pool.Return(pool.Rent());
        Settled(pool);
        var before = pool.GetStatistics();

        for (var i = 0; i < 5; i++)
        {
            var c = pool.Rent();
            Scalar(c, "SELECT 1");
            pool.Return(c);
        }

        Settled(pool);
        var after = pool.GetStatistics();
        Assert.That(after.Validations - before.Validations, Is.GreaterThanOrEqualTo(5), "each checkout ran the query");
        Assert.That(after.SessionResets - before.SessionResets, Is.Zero);
    }

    /// <summary>MySql.Data: the pool's interceptor joins the application's own (CommandInterceptors=), which keeps running.</summary>
    [Test]
    public void The_applications_own_command_interceptor_keeps_running_beside_the_pools()
    {
        if (Driver != MySqlDriver.MySqlData)
            Assert.Ignore("command interceptors are MySql.Data's");
        CountingInterceptor.Reset();
        using var pool = CreatePool(o =>
        {
            o.MaxPoolSize = 1;
            o.ConnectionString = TestServer.ConnectionString(Driver, extra: $"Allow User Variables=true;CommandInterceptors={typeof(CountingInterceptor).AssemblyQualifiedName}");
        });
        var a = pool.Rent();
        var aPhysical = a.Physical();
        Scalar(a, "SET @secret = 'A'");
        Scalar(a, "SELECT 1");
        pool.Return(a);

        var b = pool.Rent();
        Assert.That(b.Physical(), Is.SameAs(aPhysical));
        Assert.That(Convert.ToString(Scalar(b, "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)"), CultureInfo.InvariantCulture), Is.EqualTo("none"), "the pool saw the change");
        pool.Return(b);
        Assert.That(CountingInterceptor.Seen, Does.Contain("SET @secret = 'A'"), "the application's interceptor saw it too");
    }

    /// <summary>A change made through the async API, inside a transaction that commits, is seen like any other.</summary>
    [Test]
    public async Task A_change_made_through_the_async_API_inside_a_transaction_is_seen()
    {
        using var pool = PoolOfOne(SessionResetPolicy.Auto);
        var a = await pool.RentAsync();
        var aPhysical = a.Physical();
#if NETFRAMEWORK
        using (var tx = a.BeginTransaction()) // no async transaction API on .NET Framework
#else
        using (var tx = await a.BeginTransactionAsync())
#endif
        {
            using var command = a.CreateCommand();
            command.Transaction = tx;
            command.CommandText = "SET @secret = 'A'";
            await command.ExecuteNonQueryAsync();
            command.CommandText = "INSERT INTO hygiene VALUES (9, 'A')";
            await command.ExecuteNonQueryAsync();
            tx.Commit();
        }

        pool.Return(a);

        var b = await pool.RentAsync();
        Assert.That(b.Physical(), Is.SameAs(aPhysical));
        Assert.That(Convert.ToString(Scalar(b, "SELECT CAST(IFNULL(@secret, 'none') AS CHAR)"), CultureInfo.InvariantCulture), Is.EqualTo("none"));
        pool.Return(b);
        Assert.That(Admin.Count("SELECT COUNT(*) FROM hygiene WHERE id = 9"), Is.EqualTo(1), "the committed row stays");
    }

    [TestCase(System.Data.IsolationLevel.Serializable, true)]
    [TestCase(System.Data.IsolationLevel.ReadCommitted, false)]
    public void A_transaction_begun_with_an_isolation_level_does_not_leave_it_to_the_next_caller(System.Data.IsolationLevel level, bool commit)
    {
        using var pool = PoolOfOne(SessionResetPolicy.Auto);
        var a = pool.Rent();
        var aPhysical = a.Physical();
        using (var tx = a.BeginTransaction(level))
        {
            Scalar(a, "SELECT 1", tx);
            if (commit)
                tx.Commit();
        }

        pool.Return(a);

        var b = pool.Rent();
        Assert.That(b.Physical(), Is.SameAs(aPhysical));
        Assert.That(Convert.ToString(Scalar(b, "SELECT @@SESSION.tx_isolation = @@GLOBAL.tx_isolation"), CultureInfo.InvariantCulture), Is.EqualTo("1"));
        pool.Return(b);
    }

    /// <summary>A unit of work as NHibernate runs it (a transaction at the default isolation level, plain statements, commit) leaves the session as it opened: no reset.</summary>
    [Category(DriverContractTests.Contract)]
    [TestCase(false)]
    [TestCase(true)]
    public async Task Units_of_work_in_transactions_at_the_default_isolation_level_cost_no_reset(bool async)
    {
        using var pool = PoolOfOne(SessionResetPolicy.Auto);
        pool.Return(pool.Rent());
        Settled(pool);
        var resetsBefore = pool.GetStatistics().SessionResets;

        for (var i = 0; i < 10; i++)
        {
            var c = async ? await pool.RentAsync() : pool.Rent();
#if NETFRAMEWORK
            using (var tx = c.BeginTransaction()) // no async transaction API on .NET Framework
#else
            using (var tx = async ? await c.BeginTransactionAsync() : c.BeginTransaction())
#endif
            {
                using var command = c.CreateCommand();
                command.Transaction = tx;
                command.CommandText = $"INSERT INTO hygiene VALUES ({100 + i}, 'unit of work')";
                _ = async ? await command.ExecuteNonQueryAsync() : command.ExecuteNonQuery();
#if NETFRAMEWORK
                tx.Commit();
#else
                if (async)
                    await tx.CommitAsync();
                else
                    tx.Commit();
#endif
            }

            pool.Return(c);
        }

        Settled(pool);
        Assert.That(pool.GetStatistics().SessionResets - resetsBefore, Is.Zero);
        Assert.That(Admin.Count("SELECT COUNT(*) FROM hygiene WHERE who = 'unit of work'"), Is.EqualTo(10));
    }

    /// <summary>The pool's listener asks MySqlConnector for its activities' data, never marks them recorded: an application's exporter, which sends recorded activities, sends nothing more than before.</summary>
    [Category(DriverContractTests.Contract)]
    [Test]
    public void Watching_MySqlConnector_statements_marks_no_activity_recorded()
    {
        if (Driver == MySqlDriver.MySqlData)
            Assert.Ignore("MySql.Data's statements are not watched");
        var seen = new System.Collections.Concurrent.ConcurrentQueue<System.Diagnostics.Activity>();
        using var application = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == "MySqlConnector",
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.PropagationData,
            ActivityStopped = seen.Enqueue,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(application);
        using var pool = PoolOfOne(SessionResetPolicy.Auto);
        var c = pool.Rent();
        Scalar(c, "SELECT 1");
        pool.Return(c);

        Assert.That(seen.Where(a => a.OperationName == "Execute"), Is.Not.Empty);
        Assert.That(seen.Where(a => a.Recorded), Is.Empty);
    }

    [Test]
    public void A_loan_that_runs_nothing_after_a_reset_is_not_reset_again()
    {
        using var pool = PoolOfOne(SessionResetPolicy.Auto);
        var a = pool.Rent();
        Scalar(a, "SET @x = 1");
        pool.Return(a);
        Settled(pool);
        var afterFirst = pool.GetStatistics().SessionResets;

        pool.Return(pool.Rent());
        Settled(pool);

        Assert.That(pool.GetStatistics().SessionResets, Is.EqualTo(afterFirst));
        Assert.That(afterFirst, Is.EqualTo(1));
    }

    /// <summary>The server's count of statements from clients (this query included).</summary>
    private long ServerQuestions() =>
        Admin.Count("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'QUESTIONS'");

    private KeepAlivePool PoolOfOne(SessionResetPolicy policy) => CreatePool(o =>
    {
        o.MaxPoolSize = 1;
        o.SessionReset = policy;
        o.ConnectionString = TestServer.ConnectionString(Driver, extra: "Allow User Variables=true");
    });

    private void NextCallerFindsAFreshSession(SessionResetPolicy policy, string[] a, string probe, string fresh, string? then)
    {
        using var pool = PoolOfOne(policy);
        var first = pool.Rent();
        var firstPhysical = first.Physical();
        foreach (var sql in a)
            Scalar(first, sql);
        if (then is not null)
            Scalar(first, then);
        pool.Return(first);

        var second = pool.Rent();
        Assert.That(second.Physical(), Is.SameAs(firstPhysical), "B got A's connection");
        Assert.That(Convert.ToString(Scalar(second, probe), CultureInfo.InvariantCulture), Is.EqualTo(fresh), "B sees a fresh session");
        Assert.That(Scalar(second, "SELECT DATABASE()"), Is.EqualTo(TestServer.Database), "on the connection string's database");
        pool.Return(second);
    }
}

/// <summary>An application's own MySql.Data command interceptor: records what it is shown, handles nothing.</summary>
public sealed class CountingInterceptor : MySql.Data.MySqlClient.BaseCommandInterceptor
{
    private static readonly System.Collections.Concurrent.ConcurrentQueue<string> s_seen = new();

    public static IReadOnlyCollection<string> Seen => s_seen.ToArray();

    public static void Reset()
    {
        while (s_seen.TryDequeue(out _))
        {
        }
    }

    public override bool ExecuteScalar(string sql, ref object returnValue)
    {
        s_seen.Enqueue(sql);
        return false;
    }

    public override bool ExecuteNonQuery(string sql, ref int returnValue)
    {
        s_seen.Enqueue(sql);
        return false;
    }

    public override bool ExecuteReader(string sql, System.Data.CommandBehavior behavior, ref MySql.Data.MySqlClient.MySqlDataReader returnValue)
    {
        s_seen.Enqueue(sql);
        return false;
    }
}
