using System;
using System.Linq;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>EnsureAlive: what the pool does for a connection a caller keeps (an NHibernate session with release_mode=on_close).</summary>
[TestFixture]
public class HeldConnectionTests
{
    [Test]
    public void A_held_connection_used_within_the_bypass_window_costs_no_round_trip()
    {
        using var f = new FakePoolFixture();
        var held = f.Pool.Rent();
        f.Time.Advance(TimeSpan.FromMilliseconds(400));

        Assert.That(f.Pool.EnsureAlive(held, inTransaction: false), Is.False);
        f.Time.Advance(TimeSpan.FromMilliseconds(400));
        Assert.That(f.Pool.EnsureAlive(held, inTransaction: false), Is.False, "each command renews the window");

        Assert.That(f.Pings, Is.Empty);
        f.Pool.Return(held);
    }

    [Test]
    public void A_held_connection_found_dead_outside_a_transaction_is_reopened_on_the_same_object()
    {
        using var f = new FakePoolFixture();
        var held = f.Pool.Rent();
        var physical = held.Fake();
        f.Dead.Add(physical);
        f.Time.Advance(TimeSpan.FromMinutes(5));

        var reopened = f.Pool.EnsureAlive(held, inTransaction: false);

        Assert.That(reopened, Is.True);
        Assert.That(held.Physical(), Is.SameAs(physical), "reopened on the same object");
        Assert.That(physical.State, Is.EqualTo(System.Data.ConnectionState.Open));
        Assert.That(physical.ConnectionString, Is.EqualTo("Server=fake"), "reopened with the pool's own connection string, password included");
        var stats = f.Pool.GetStatistics();
        Assert.That((stats.Reopened, stats.Active), Is.EqualTo((1L, 1)));
        Assert.That(f.Log.Messages("ConnectionReopened").Single(), Does.Contain("session state"));
        f.Pool.Return(held);
    }

    [Test]
    public void A_held_connection_found_dead_inside_a_transaction_is_not_reopened_and_the_caller_is_told()
    {
        using var f = new FakePoolFixture();
        var held = f.Pool.Rent();
        f.Dead.Add(held.Physical());
        f.Time.Advance(TimeSpan.FromMinutes(5));

        var error = Assert.Throws<ConnectionLostException>(() => f.Pool.EnsureAlive(held, inTransaction: true))!;

        Assert.That(error.Message, Does.Contain("nothing of it was committed").And.Contain("Begin a new transaction"));
        Assert.That(f.Pool.GetStatistics().Reopened, Is.Zero);
        f.Pool.Return(held);
    }

    [Test]
    public void EnsureAlive_refuses_a_connection_that_is_not_on_loan()
    {
        using var f = new FakePoolFixture();
        var c = f.Pool.Rent();
        f.Pool.Return(c);

        // A handle given back refuses every use: ObjectDisposedException, an InvalidOperationException as documented.
        Assert.That(() => f.Pool.EnsureAlive(c, false), Throws.TypeOf<ObjectDisposedException>().With.Message.Contains("pool 'fake'"));
        Assert.That(() => f.Pool.EnsureAlive(new FakeConnection(), false), Throws.InvalidOperationException, "not one of the pool's connections");
        Assert.That(KeepAlivePool.OwnerOf(c), Is.SameAs(f.Pool));
        Assert.That(KeepAlivePool.OwnerOf(new FakeConnection()), Is.Null);
    }
}
