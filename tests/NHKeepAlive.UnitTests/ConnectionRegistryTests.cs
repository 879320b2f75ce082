using System;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>The registry's transitions: each names the state it expects, and any other state fails loudly.</summary>
[TestFixture]
public class ConnectionRegistryTests
{
    private static PooledConnection NewConnection(int id) =>
        new(id, new FakeConnection(), new ServerHost(0, "fake:3306", "Server=fake"), TimeSpan.Zero);

    private static ConnectionRegistry NewRegistry(int max = 4, Func<bool>? refuses = null) => new("test", max, refuses ?? (() => false));

    [Test]
    public void A_connection_goes_through_its_life_and_every_state_is_counted()
    {
        using var registry = NewRegistry();
        var pooled = NewConnection(1);
        registry.Add(pooled);
        Assert.That(registry.Counts(), Is.EqualTo((0, 0, 1, 0)));
        Assert.That(registry.ToIdle(pooled, newest: true), Is.True);
        Assert.That(registry.Counts(), Is.EqualTo((0, 1, 0, 0)));
        Assert.That(registry.TakeNewestIdle(), Is.SameAs(pooled));
        Assert.That(registry.ToLeased(pooled), Is.True);
        Assert.That(pooled.LeaseId, Is.EqualTo(1));
        Assert.That(registry.Counts(), Is.EqualTo((1, 0, 0, 0)));
        Assert.That(registry.TryEndLease(pooled, 1, PooledConnectionState.Checking), Is.True);
        Assert.That(registry.BeginClose(pooled), Is.True);
        Assert.That(registry.BeginClose(pooled), Is.False, "closed exactly once");
        registry.Forget(pooled);
        Assert.That(pooled.State, Is.EqualTo(PooledConnectionState.Closed));
        Assert.That(registry.Count, Is.Zero);
        Assert.That(registry.Counts(), Is.EqualTo((0, 0, 0, 0)));
    }

    [Test]
    public void A_transition_from_a_state_other_than_the_expected_one_throws_and_changes_nothing()
    {
        using var registry = NewRegistry();
        var pooled = NewConnection(7);
        registry.Add(pooled);
        registry.ToIdle(pooled, newest: true);

        var wrong = Assert.Throws<InvalidOperationException>(() => registry.ToLeased(pooled))!;
        Assert.That(wrong.Message, Does.Contain("connection 7 is Idle, not Checking or Opening"));
        Assert.Throws<InvalidOperationException>(() => registry.BeginClose(pooled), "an idle connection must be taken out of the idle list before it is closed");
        Assert.Throws<InvalidOperationException>(() => registry.Forget(pooled));
        Assert.Throws<InvalidOperationException>(() => registry.Move(pooled, PooledConnectionState.Leased, PooledConnectionState.Checking));
        Assert.Throws<InvalidOperationException>(() => registry.Add(pooled), "added twice");
        Assert.That(pooled.State, Is.EqualTo(PooledConnectionState.Idle));
        Assert.That(registry.Counts(), Is.EqualTo((0, 1, 0, 0)));
    }

    [Test]
    public void A_stale_lease_cannot_end_the_current_one()
    {
        using var registry = NewRegistry();
        var pooled = NewConnection(3);
        registry.Add(pooled);
        registry.ToLeased(pooled);
        registry.TryEndLease(pooled, 1, PooledConnectionState.Checking);
        registry.ToIdle(pooled, newest: true);
        registry.TakeNewestIdle();
        registry.ToLeased(pooled);

        Assert.That(registry.TryEndLease(pooled, 1, PooledConnectionState.Checking), Is.False, "the first loan's handle is stale");
        Assert.That(pooled.State, Is.EqualTo(PooledConnectionState.Leased));
        Assert.That(registry.TryEndLease(pooled, 2, PooledConnectionState.Checking), Is.True);
    }

    [Test]
    public void A_refusing_pool_takes_nothing_back_into_use()
    {
        var refuses = false;
        using var registry = NewRegistry(refuses: () => refuses);
        var pooled = NewConnection(1);
        registry.Add(pooled);
        refuses = true;
        Assert.That(registry.ToIdle(pooled, newest: true), Is.False);
        Assert.That(registry.ToLeased(pooled), Is.False);
        Assert.That(pooled.State, Is.EqualTo(PooledConnectionState.Opening));
    }
}
