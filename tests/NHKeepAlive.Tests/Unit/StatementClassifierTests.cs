using NHKeepAlive.Drivers;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>What the pool takes, from a statement's text, as leaving the session clean (MySqlConnector's Auto policy).</summary>
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
}
