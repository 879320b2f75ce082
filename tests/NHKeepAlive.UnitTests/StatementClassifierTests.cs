using NHKeepAlive.Drivers;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>What the pool takes, from a statement's text, as leaving the session clean (the Auto policy), and what a MySql.Data connection's record keeps of it.</summary>
[TestFixture]
public class StatementClassifierTests
{
    [TestCase("SELECT 1")]
    [TestCase("  select * from t where a = @p0 and b = ?p1")]
    [TestCase("INSERT INTO t (a, b) VALUES (@a, 'x;y')")]
    [TestCase("UPDATE t SET a = 1 WHERE id = @id;")]
    [TestCase("DELETE FROM t WHERE id = 1 -- SET @x = 1\n")]
    [TestCase("/* plain comment: SET @x = 1 */ SELECT @@SESSION.wait_timeout")]
    [TestCase("WITH c AS (SELECT 1 AS a) SELECT a FROM c")]
    [TestCase("(SELECT 1) UNION (SELECT 2)")]
    [TestCase("SELECT 'GET_LOCK(1)', `into`, \"@x := 1\"")]
    [TestCase("SELECT LAST_INSERT_ID()")]
    [TestCase("SHOW VARIABLES LIKE 'wait_timeout'")]
    [TestCase("SELECT * FROM t FOR UPDATE")]
    [TestCase("INSERT INTO nh_note (Text) VALUES (?p0); select LAST_INSERT_ID()")]
    [TestCase("SELECT 1; SELECT 2;")]
    public void Clean(string sql) => Assert.That(StatementClassifier.LeavesSessionClean(sql), Is.True);

    [TestCase("SET autocommit = 0")]
    [TestCase("set @secret = 'A'")]
    [TestCase("USE mysql")]
    [TestCase("START TRANSACTION")]
    [TestCase("BEGIN")]
    [TestCase("CREATE TEMPORARY TABLE t (a INT)")]
    [TestCase("LOCK TABLES t WRITE")]
    [TestCase("CALL p()")]
    [TestCase("DO GET_LOCK('k', 0)")]
    [TestCase("SELECT GET_LOCK('k', 0)")]
    [TestCase("SELECT get_lock ( 'k', 0 )")]
    [TestCase("SELECT RELEASE_LOCK('k')")]
    [TestCase("SELECT LAST_INSERT_ID(42)")]
    [TestCase("SELECT @x := 1")]
    [TestCase("SELECT a INTO @x FROM t")]
    [TestCase("SELECT 1; SET @x = 1")]
    [TestCase("/*!40101 SET @x = 1 */")]
    [TestCase("SELECT 1 /*M!100000 , @x := 1 */")]
    [TestCase("SELECT 'unterminated")]
    [TestCase("SELECT 1; 'x'")]
    [TestCase("SELECT '\\'; SET @x = 1; SELECT '")]
    [TestCase("INSERT INTO t VALUES (1); select LAST_INSERT_ID(7)")]
    [TestCase("PREPARE s FROM 'SELECT 1'")]
    [TestCase("")]
    [TestCase("   ")]
    [TestCase(null)]
    public void A_change_or_unknown(string? sql) => Assert.That(StatementClassifier.LeavesSessionClean(sql), Is.False);

    [TestCase("SELECT 1", (int)(StatementEffects.None))]
    [TestCase("BEGIN", (int)(StatementEffects.Transaction | StatementEffects.BeginsTransaction))]
    [TestCase("begin work", (int)(StatementEffects.Transaction | StatementEffects.BeginsTransaction))]
    [TestCase("START TRANSACTION READ ONLY", (int)(StatementEffects.Transaction | StatementEffects.BeginsTransaction))]
    [TestCase("COMMIT", (int)(StatementEffects.Transaction))]
    [TestCase("ROLLBACK TO SAVEPOINT s", (int)(StatementEffects.Transaction))]
    [TestCase("SAVEPOINT s", (int)(StatementEffects.Transaction))]
    [TestCase("RELEASE SAVEPOINT s", (int)(StatementEffects.Transaction))]
    [TestCase("SET  TRANSACTION ISOLATION LEVEL SERIALIZABLE", (int)(StatementEffects.NextTransaction))]
    [TestCase("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; START TRANSACTION", (int)(StatementEffects.Transaction | StatementEffects.BeginsTransaction))]
    [TestCase("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", (int)(StatementEffects.Session))]
    [TestCase("BEGIN NOT ATOMIC SET @x = 1; END", (int)(StatementEffects.Session))]
    [TestCase("START SLAVE", (int)(StatementEffects.Session))]
    [TestCase("RELEASE_LOCK('k')", (int)(StatementEffects.Session))]
    [TestCase("XA START 'x'", (int)(StatementEffects.Session))]
    [TestCase("BEGIN; SET @x = 1", (int)(StatementEffects.Session))]
    [TestCase("COMMIT RELEASE", (int)(StatementEffects.Session))]
    [TestCase("rollback work release", (int)(StatementEffects.Session))]
    [TestCase("COMMIT AND CHAIN", (int)(StatementEffects.Transaction))]
    public void Effects(string sql, int expected) => Assert.That(StatementClassifier.Classify(sql), Is.EqualTo((StatementEffects)expected)); // int: the enum is internal

    /// <summary>MySql.Data's BeginTransaction(level) sends SET TRANSACTION ISOLATION LEVEL, then BEGIN: the transaction takes the level, the session keeps its own.</summary>
    [Test]
    public void A_transaction_characteristic_taken_by_the_transaction_leaves_the_session_clean()
    {
        var watch = new StatementWatch();
        foreach (var sql in new[] { "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "BEGIN", "INSERT INTO t VALUES (1)", "COMMIT" })
            watch.Saw(sql);
        Assert.That(watch.TakeChanged(), Is.False);
    }

    [Test]
    public void A_transaction_characteristic_left_for_the_next_caller_is_a_change()
    {
        var watch = new StatementWatch();
        watch.Saw("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
        watch.Saw("SELECT 1");
        Assert.That(watch.TakeChanged(), Is.True);
        Assert.That(watch.TakeChanged(), Is.False, "taking the record clears it");
    }

    [Test]
    public void A_change_stays_recorded_through_later_clean_statements_and_transactions()
    {
        var watch = new StatementWatch();
        foreach (var sql in new[] { "SET @x = 1", "SELECT 1", "BEGIN", "COMMIT" })
            watch.Saw(sql);
        Assert.That(watch.TakeChanged(), Is.True);
        watch.Saw("SET @x = 2");
        watch.Clear();
        Assert.That(watch.TakeChanged(), Is.False, "cleared after a reset");
    }
}
