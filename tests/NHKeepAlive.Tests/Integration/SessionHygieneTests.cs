using System;
using System.Data;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>Nothing one caller leaves on a connection reaches the next.</summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class SessionHygieneTests(MySqlDriver driver) : IntegrationTest(driver)
{
    [SetUp]
    public void CreateTable()
    {
        Admin.Execute("CREATE TABLE IF NOT EXISTS hygiene (id INT PRIMARY KEY, who VARCHAR(40)) ENGINE=InnoDB");
        Admin.Execute("DELETE FROM hygiene");
    }

    [Category(DriverContractTests.Contract)]
    [Test]
    public void An_uncommitted_transaction_left_by_one_caller_is_rolled_back_before_the_next()
    {
        using var pool = CreatePool(o => o.MaxPoolSize = 1);
        var first = pool.Rent();
        var firstPhysical = first.Physical();
        var transaction = first.BeginTransaction();
        Scalar(first, "INSERT INTO hygiene VALUES (1, 'abandoned')", transaction);
        pool.Return(first); // never committed nor rolled back

        var second = pool.Rent();
        Assert.That(second.Physical(), Is.SameAs(firstPhysical), "the same physical connection");
        Assert.That(Convert.ToInt64(Scalar(second, "SELECT COUNT(*) FROM hygiene"), System.Globalization.CultureInfo.InvariantCulture), Is.Zero, "the next caller does not see the row");
        using (var own = second.BeginTransaction())
        {
            Scalar(second, "INSERT INTO hygiene VALUES (2, 'next caller')", own);
            own.Commit();
        }

        pool.Return(second);
        Assert.That(Admin.Count("SELECT COUNT(*) FROM hygiene WHERE id = 1"), Is.Zero, "the abandoned row was never committed");
        Assert.That(Admin.Count("SELECT COUNT(*) FROM hygiene WHERE id = 2"), Is.EqualTo(1));
        Assert.That(Log.Has("TransactionRolledBack"), Is.True);
        GC.KeepAlive(transaction);
    }

    [Test]
    public void A_database_changed_by_a_caller_is_changed_back()
    {
        using var pool = CreatePool(o => o.MaxPoolSize = 1);
        var first = pool.Rent();
        first.ChangeDatabase("mysql");
        pool.Return(first);

        var second = pool.Rent();
        Assert.That(Scalar(second, "SELECT DATABASE()"), Is.EqualTo(Infrastructure.TestServer.Database));
        Assert.That(second.State, Is.EqualTo(ConnectionState.Open));
        pool.Return(second);
    }
}

/// <summary>
/// MySql.Data reads the server's in-transaction status flag, so even a transaction begun in plain SQL
/// is seen. (MySqlConnector keeps no such flag: only transactions begun through ADO.NET are seen.)
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
public class MySqlDataSessionHygieneTests(MySqlDriver driver) : IntegrationTest(driver)
{
    [SetUp]
    public void CreateTable()
    {
        Admin.Execute("CREATE TABLE IF NOT EXISTS hygiene (id INT PRIMARY KEY, who VARCHAR(40)) ENGINE=InnoDB");
        Admin.Execute("DELETE FROM hygiene");
    }

    [Test]
    public void A_transaction_begun_in_plain_sql_is_rolled_back_too()
    {
        using var pool = CreatePool(o => o.MaxPoolSize = 1);
        var first = pool.Rent();
        Scalar(first, "START TRANSACTION");
        Scalar(first, "INSERT INTO hygiene VALUES (3, 'plain sql')");
        pool.Return(first);

        var second = pool.Rent();
        Assert.That(Convert.ToInt64(Scalar(second, "SELECT COUNT(*) FROM hygiene"), System.Globalization.CultureInfo.InvariantCulture), Is.Zero);
        pool.Return(second);
        Assert.That(Admin.Count("SELECT COUNT(*) FROM hygiene"), Is.Zero);
    }
}
