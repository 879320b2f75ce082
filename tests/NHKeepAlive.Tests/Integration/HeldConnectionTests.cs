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
        Assert.That(held.State, Is.Not.EqualTo(System.Data.ConnectionState.Open), "closed, so that a rollback on dispose fails at once instead of writing to a dead socket");
        Assert.That(() => transaction.Rollback(), Throws.InstanceOf<InvalidOperationException>());

        pool.Return(held);
        Assert.That(Admin.Count("SELECT COUNT(*) FROM held"), Is.Zero);
        Assert.That(Request(pool), Is.Null);
    }

    [Test]
    public void A_held_connection_killed_a_moment_after_its_last_use_is_reopened_without_a_ping()
    {
        using var pool = CreatePool(); // the default 500 ms bypass window
        var held = pool.Rent();
        var before = ConnectionId(held);
        Admin.Kill(before);
        Eventually(() => !Admin.ConnectionIds().Contains(before), TimeSpan.FromSeconds(10), "the server closed it");

        Assert.That(pool.EnsureAlive(held, inTransaction: false), Is.True, "reopened: the socket showed the server had closed it");
        Assert.That(ConnectionId(held), Is.Not.EqualTo(before));
        var stats = pool.GetStatistics();
        Assert.That((stats.SocketCheckFailures, stats.Validations, stats.Reopened), Is.EqualTo((1L, 0L, 1L)), "found by the socket check, not a ping");
        pool.Return(held);
    }
}
