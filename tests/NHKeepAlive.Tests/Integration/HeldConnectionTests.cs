using System;
using System.Linq;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>A connection a caller keeps across an idle longer than wait_timeout.</summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class HeldConnectionIntegrationTests(MySqlDriver driver) : IntegrationTest(driver)
{
    [SetUp]
    public void CreateTable()
    {
        Admin.Execute("CREATE TABLE IF NOT EXISTS held (id INT PRIMARY KEY) ENGINE=InnoDB");
        Admin.Execute("DELETE FROM held");
    }

    [Test]
    public void A_held_connection_dropped_by_wait_timeout_is_reopened_before_the_next_command()
    {
        using var _ = Admin.GlobalWaitTimeout(1);
        using var pool = CreatePool(o => o.KeepAliveInterval = TimeSpan.Zero);
        var held = pool.Rent();
        var before = ConnectionId(held);
        Eventually(() => !Admin.ConnectionIds().Contains(before), TimeSpan.FromSeconds(15), "the server dropped the held connection");

        Assert.That(pool.EnsureAlive(held, inTransaction: false), Is.True);
        var after = ConnectionId(held); // the same object works again

        Assert.That(after, Is.Not.EqualTo(before));
        pool.Return(held);
        Assert.That(pool.GetStatistics().Reopened, Is.EqualTo(1));
    }

    [Test]
    public void A_held_connection_killed_inside_a_transaction_raises_a_clear_error_and_commits_nothing()
    {
        using var pool = CreatePool(o => o.ValidationBypassWindow = TimeSpan.Zero);
        var held = pool.Rent();
        var id = ConnectionId(held);
        var transaction = held.BeginTransaction();
        Scalar(held, "INSERT INTO held VALUES (1)", transaction);
        Admin.Kill(id);

        Assert.Throws<ConnectionLostException>(() => pool.EnsureAlive(held, inTransaction: true));

        pool.Return(held);
        Assert.That(Admin.Count("SELECT COUNT(*) FROM held"), Is.Zero);
        Assert.That(Request(pool), Is.Null);
    }
}
