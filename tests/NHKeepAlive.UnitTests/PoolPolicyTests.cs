using System;
using System.Data;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Moq;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>What the pool decides, on a mocked driver and a fake clock.</summary>
[TestFixture]
public class PoolPolicyTests
{
    private static readonly TimeSpan s_bypass = TimeSpan.FromMilliseconds(500);

    [Test]
    public void A_connection_returned_within_the_bypass_window_is_handed_out_without_a_ping()
    {
        using var f = new FakePoolFixture();
        var first = f.Pool.Rent();
        var physical = first.Physical();
        f.Pool.Return(first);
        f.Time.Advance(s_bypass - TimeSpan.FromMilliseconds(1));

        var second = f.Pool.Rent();

        Assert.That(second.Physical(), Is.SameAs(physical));
        Assert.That(f.Pings, Is.Empty);
    }

    [Test]
    public void A_connection_idle_past_the_bypass_window_is_pinged_before_it_is_handed_out()
    {
        using var f = new FakePoolFixture();
        var first = f.Pool.Rent();
        var physical = first.Physical();
        f.Pool.Return(first);
        f.Time.Advance(s_bypass + TimeSpan.FromMilliseconds(1));

        var second = f.Pool.Rent();

        Assert.That(second.Physical(), Is.SameAs(physical));
        Assert.That(f.Pings.ToArray(), Is.EqualTo(new[] { physical }));
        Assert.That(f.Pool.GetStatistics().Validations, Is.EqualTo(1));
    }

    [Test]
    public void A_connection_that_fails_validation_is_discarded_and_the_caller_gets_a_new_one()
    {
        using var f = new FakePoolFixture();
        var first = f.Pool.Rent();
        var physical = first.Fake();
        f.Pool.Return(first);
        f.Dead.Add(physical);
        f.Time.Advance(TimeSpan.FromSeconds(5));

        var second = f.Pool.Rent();

        Assert.That(second.Physical(), Is.Not.SameAs(physical));
        Assert.That(physical.IsDisposed, Is.True);
        var stats = f.Pool.GetStatistics();
        Assert.That((stats.Created, stats.Evicted, stats.ValidationFailures, stats.Total), Is.EqualTo((2L, 1L, 1L, 1)));
        Assert.That(f.Log.Messages("ConnectionEvicted").Single(), Does.Contain("ValidationFailed").And.Contain("dead on validation"));
    }

    [Test]
    public void A_connection_returned_broken_is_evicted_and_idle_connections_older_than_the_failure_are_validated_even_inside_the_window()
    {
        using var f = new FakePoolFixture();
        var a = f.Pool.Rent();
        var b = f.Pool.Rent();
        var physicalA = a.Physical();
        f.Pool.Return(a);
        b.Fake().Break();

        f.Pool.Return(b);
        var next = f.Pool.Rent();

        Assert.That(next.Physical(), Is.SameAs(physicalA));
        Assert.That(f.Pings.ToArray(), Is.EqualTo(new[] { physicalA }), "a predates the failure, so it is pinged although it was returned just now");
        Assert.That(f.Pool.GetStatistics().Generation, Is.EqualTo(1));
        Assert.That(f.Log.Messages("ConnectionEvicted").Single(), Does.Contain("Broken"));
    }

    [Test]
    public void A_reported_disconnect_evicts_the_connection_but_an_error_of_the_statement_does_not()
    {
        using var f = new FakePoolFixture();
        using (var lease = f.Pool.Lease())
            lease.ReportFailure(DriverExceptions.MySqlData("Duplicate entry '1' for key 'PRIMARY'", 1062));
        Assert.That(f.Pool.GetStatistics().Idle, Is.EqualTo(1));

        using (var lease = f.Pool.Lease())
            lease.ReportFailure(DriverExceptions.MySqlData("Fatal error encountered during command execution.", 0, new System.IO.IOException("Connection reset by peer")));

        var stats = f.Pool.GetStatistics();
        Assert.That((stats.Idle, stats.Evicted), Is.EqualTo((0, 1L)));
    }

    [Test]
    public void The_keepalive_pings_every_idle_connection_once_per_interval()
    {
        using var f = new FakePoolFixture(o => o.KeepAliveInterval = TimeSpan.FromSeconds(60));
        var connections = f.RentMany(3);
        connections.ForEach(c => f.Pool.Return(c));

        // Housekeeping runs every interval/4 = 15 s; nothing is due before 60 s of idle.
        for (var i = 0; i < 3; i++)
            f.Advance(TimeSpan.FromSeconds(15));
        Assert.That(f.Pings, Is.Empty);
        f.Advance(TimeSpan.FromSeconds(15));
        Assert.That(f.Pings.Distinct().Count(), Is.EqualTo(3));
        Assert.That(f.Pings, Has.Count.EqualTo(3));

        for (var i = 0; i < 4; i++)
            f.Advance(TimeSpan.FromSeconds(15));
        Assert.That(f.Pings, Has.Count.EqualTo(6), "each connection once more, one interval later");
        Assert.That(f.Pool.GetStatistics().KeepAlivePings, Is.EqualTo(6));
    }

    [Test]
    public void The_keepalive_leaves_alone_a_connection_used_within_the_interval()
    {
        using var f = new FakePoolFixture(o => o.KeepAliveInterval = TimeSpan.FromSeconds(60));
        var c = f.Pool.Rent();
        f.Pool.Return(c);
        f.Advance(TimeSpan.FromSeconds(45));
        f.Pool.Return(f.Pool.Rent()); // used again (validated, as it idled past the window)
        var pingsAfterUse = f.Pings.Count;

        f.Advance(TimeSpan.FromSeconds(15));
        f.Advance(TimeSpan.FromSeconds(15));

        Assert.That(f.Pings, Has.Count.EqualTo(pingsAfterUse), "60 s after creation, but only 30 s after its last use");
    }

    [Test]
    public void The_keepalive_interval_follows_the_server_wait_timeout_when_it_is_shorter()
    {
        using var f = new FakePoolFixture(serverWaitTimeout: TimeSpan.FromSeconds(10));
        f.Pool.Return(f.Pool.Rent());

        var stats = f.Pool.GetStatistics();
        Assert.That(stats.ServerWaitTimeout, Is.EqualTo(TimeSpan.FromSeconds(10)));
        Assert.That(stats.KeepAliveInterval, Is.EqualTo(TimeSpan.FromSeconds(5)));
        Assert.That(f.Pool.HousekeepingPeriod, Is.EqualTo(TimeSpan.FromSeconds(1.25)));
        Assert.That(f.Log.Messages("KeepAliveIntervalChosen").Single(), Does.Contain("wait_timeout is 10 s"));
    }

    [TestCase(120, 28800, 120, TestName = "Capped by the setting under the 8 h default")]
    [TestCase(120, 60, 30, TestName = "Half a short wait_timeout")]
    [TestCase(120, null, 120, TestName = "The setting when wait_timeout is unknown")]
    [TestCase(120, 0.2, 0.25, TestName = "Never under 250 ms")]
    [TestCase(0, 60, null, TestName = "Zero turns it off")]
    public void Keepalive_interval_policy(double configuredSeconds, double? waitTimeoutSeconds, double? expectedSeconds)
    {
        var interval = KeepAlivePool.KeepAliveIntervalFor(
            TimeSpan.FromSeconds(configuredSeconds), waitTimeoutSeconds is { } w ? TimeSpan.FromSeconds(w) : null);
        Assert.That(interval?.TotalSeconds, Is.EqualTo(expectedSeconds));
    }

    [Test]
    public void Lifetime_jitter_takes_at_most_two_and_a_half_percent_off_and_spreads_connections()
    {
        var lifetime = TimeSpan.FromMinutes(30);
        var random = new Random(7);
        var expiries = Enumerable.Range(0, 1000).Select(_ => KeepAlivePool.LifetimeExpiry(TimeSpan.Zero, lifetime, random.NextDouble())).ToList();

        Assert.That(expiries, Has.All.LessThanOrEqualTo(lifetime).And.All.GreaterThanOrEqualTo(lifetime - TimeSpan.FromSeconds(45)));
        Assert.That(expiries.Distinct().Count(), Is.GreaterThan(900));
        Assert.That(KeepAlivePool.LifetimeExpiry(TimeSpan.FromSeconds(10), lifetime, 1.0), Is.EqualTo(TimeSpan.FromSeconds(10) + lifetime - TimeSpan.FromSeconds(45)));
    }

    [Test]
    public void Max_lifetime_retires_an_idle_connection_but_never_takes_one_from_its_caller()
    {
        using var f = new FakePoolFixture(o =>
        {
            o.MaxLifetime = TimeSpan.FromMinutes(10);
            o.KeepAliveInterval = TimeSpan.FromMinutes(2);
        });
        var idle = f.Pool.Rent();
        var held = f.Pool.Rent();
        var idleConnection = idle.Fake();
        var heldConnection = held.Fake();
        f.Pool.Return(idle);

        for (var i = 0; i < 21; i++)
            f.Advance(TimeSpan.FromSeconds(30));

        Assert.That(idleConnection.IsDisposed, Is.True, "idle past its lifetime: retired by housekeeping");
        Assert.That(held.State, Is.EqualTo(ConnectionState.Open), "in use: left alone");
        f.Pool.Return(held);
        Assert.That(heldConnection.IsDisposed, Is.True, "retired as it came back");
        Assert.That(f.Log.Messages("ConnectionEvicted"), Has.All.Contain("MaxLifetime"));
    }

    [Test]
    public void Idle_timeout_closes_connections_above_the_minimum_idle_only()
    {
        using var f = new FakePoolFixture(o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(1);
            o.MinIdle = 2;
        });
        Assert.That(f.Pool.HousekeepingTask.Wait(TimeSpan.FromSeconds(5)), Is.True, "the minimum is filled at start; let that finish first");
        f.RentMany(5).ForEach(c => f.Pool.Return(c));

        for (var i = 0; i < 3; i++)
            f.Advance(TimeSpan.FromSeconds(30));

        var stats = f.Pool.GetStatistics();
        Assert.That((stats.Idle, stats.Evicted), Is.EqualTo((2, 3L)));
        Assert.That(f.Log.Messages("ConnectionEvicted"), Has.All.Contain("IdleTimeout"));
    }

    [Test]
    public void The_minimum_idle_is_refilled_in_the_background()
    {
        using var f = new FakePoolFixture(o => o.MinIdle = 3);

        f.Advance(f.Pool.HousekeepingPeriod);

        Assert.That(f.Pool.GetStatistics().Idle, Is.EqualTo(3));
        Assert.That(f.Connections, Has.Count.EqualTo(3));
    }

    [Test]
    public void A_connection_held_past_the_leak_threshold_is_logged_once_with_the_borrower_stack()
    {
        using var f = new FakePoolFixture(o => o.LeakDetectionThreshold = TimeSpan.FromSeconds(10));
        var held = f.Pool.Rent();

        f.Advance(TimeSpan.FromSeconds(5));
        f.Advance(TimeSpan.FromSeconds(5));
        f.Advance(TimeSpan.FromSeconds(5));

        var warning = f.Log.Messages("LeakSuspected").Single();
        Assert.That(warning, Does.Contain(nameof(A_connection_held_past_the_leak_threshold_is_logged_once_with_the_borrower_stack)));
        f.Pool.Return(held);
    }

    [Test]
    public void A_full_pool_times_out_with_a_message_that_tells_its_state()
    {
        using var f = new FakePoolFixture(o =>
        {
            o.MaxPoolSize = 2;
            o.ConnectionTimeout = TimeSpan.FromMilliseconds(200);
            o.ValidationTimeout = TimeSpan.FromMilliseconds(100);
        });
        var held = f.RentMany(2);

        var error = Assert.Throws<PoolTimeoutException>(() => f.Pool.Rent())!;

        Assert.That(error.Message, Does.Contain("active 2, idle 0, opening 0, checking 0, pending 0, max 2").And.Contain("nhkeepalive.max_pool_size"));
        Assert.That(error.Statistics!.Active, Is.EqualTo(2));
        GC.KeepAlive(held); // held to the end: a handle collected earlier would be taken back
    }

    [Test]
    public void A_waiting_caller_gets_the_connection_another_returns()
    {
        using var f = new FakePoolFixture(o => o.MaxPoolSize = 1);
        var held = f.Pool.Rent();
        var physical = held.Physical();
        var waiter = f.Pool.RentAsync();
        Assert.That(waiter.IsCompleted, Is.False);

        f.Pool.Return(held);

        Assert.That(waiter.Wait(TimeSpan.FromSeconds(5)), Is.True);
        Assert.That(waiter.Result.Physical(), Is.SameAs(physical));
    }

    [Test]
    public void Returning_a_connection_twice_or_one_from_elsewhere_is_refused()
    {
        using var f = new FakePoolFixture();
        var c = f.Pool.Rent();
        f.Pool.Return(c);

        Assert.That(() => f.Pool.Return(c), Throws.InvalidOperationException.With.Message.Contains("returned already"));
        Assert.That(() => f.Pool.Return(new FakeConnection()), Throws.InvalidOperationException);
    }

    [Test]
    public void A_connection_returned_in_a_transaction_is_rolled_back_and_one_without_costs_no_round_trip()
    {
        using var f = new FakePoolFixture();
        var handle = f.Pool.Rent();
        var c = handle.Physical();
        f.Pool.Return(handle);
        f.Driver.Verify(d => d.RollBack(It.IsAny<System.Data.Common.DbConnection>()), Times.Never);

        f.Driver.Setup(d => d.IsInTransaction(c)).Returns(true);
        f.Driver.Setup(d => d.RollBack(c));
        f.Pool.Return(f.Pool.Rent());

        f.Driver.Verify(d => d.RollBack(c), Times.Once);
        Assert.That(f.Log.Has("TransactionRolledBack"), Is.True);
    }

    [Test]
    public void When_the_driver_cannot_tell_the_pool_rolls_back_anyway()
    {
        using var f = new FakePoolFixture();
        f.Driver.Setup(d => d.IsInTransaction(It.IsAny<System.Data.Common.DbConnection>())).Returns((bool?)null);
        f.Driver.Setup(d => d.RollBack(It.IsAny<System.Data.Common.DbConnection>()));

        f.Pool.Return(f.Pool.Rent());

        f.Driver.Verify(d => d.RollBack(It.IsAny<System.Data.Common.DbConnection>()), Times.Once);
    }

    [Test]
    public void Housekeeping_never_overlaps_itself_while_a_keepalive_ping_hangs()
    {
        using var f = new FakePoolFixture(o => o.KeepAliveInterval = TimeSpan.FromSeconds(4));
        var gate = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var concurrent = 0;
        var maxConcurrent = 0;
        // Housekeeping pings synchronously, on its own thread.
        f.Driver.Setup(d => d.PingAsync(It.IsAny<System.Data.Common.DbConnection>(), false, It.IsAny<CancellationToken>()))
            .Returns(() =>
            {
                var now = Interlocked.Increment(ref concurrent);
                InterlockedMax(ref maxConcurrent, now);
                return new ValueTask<bool>(gate.Task.ContinueWith(t => { Interlocked.Decrement(ref concurrent); return t.Result; }, TaskScheduler.Default));
            });
        f.RentMany(2).ForEach(c => f.Pool.Return(c));

        f.Time.Advance(TimeSpan.FromSeconds(4)); // the run starts and hangs on its first ping
        var run = f.Pool.HousekeepingTask;
        for (var i = 0; i < 10; i++)
            f.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(f.Pool.HousekeepingTask, Is.SameAs(run), "no second run while the first is in progress");
        Assert.That(run.IsCompleted, Is.False);

        gate.SetResult(true);
        Assert.That(run.Wait(TimeSpan.FromSeconds(5)), Is.True);
        Assert.That(maxConcurrent, Is.EqualTo(1));
    }

    [Test]
    public void Dispose_stops_the_timer_closes_idle_connections_at_once_and_waits_for_those_on_loan()
    {
        var f = new FakePoolFixture(o =>
        {
            o.KeepAliveInterval = TimeSpan.FromSeconds(4);
            o.ShutdownGracePeriod = TimeSpan.FromSeconds(30);
        });
        var idle = f.Pool.Rent();
        var held = f.Pool.Rent();
        var idleConnection = idle.Fake();
        var heldConnection = held.Fake();
        f.Pool.Return(idle);

        var disposing = Task.Run(f.Pool.Dispose);
        Assert.That(() => idleConnection.IsDisposed, Is.True.After(5000, 10), "idle: closed at once");
        Assert.That(disposing.IsCompleted, Is.False, "waiting for the connection on loan");
        f.Pool.Return(held);

        Assert.That(disposing.Wait(TimeSpan.FromSeconds(5)), Is.True, "done as soon as the last connection came back");
        Assert.That(heldConnection.IsDisposed, Is.True);
        f.Time.Advance(TimeSpan.FromMinutes(5));
        Assert.That(f.Pings, Is.Empty);
        Assert.That(() => f.Pool.Rent(), Throws.TypeOf<ObjectDisposedException>());
        Assert.That(f.Pool.GetStatistics().Total, Is.Zero);
    }

    [Test]
    public void Dispose_closes_a_connection_still_on_loan_after_the_grace_period_and_logs_who_took_it()
    {
        using var f = new FakePoolFixture(o =>
        {
            o.ShutdownGracePeriod = TimeSpan.FromMilliseconds(200);
            o.LeakDetectionThreshold = TimeSpan.FromMinutes(1);
        });
        var held = f.Pool.Rent();
        var heldConnection = held.Fake();

        f.Pool.Dispose();

        Assert.That(heldConnection.IsDisposed, Is.True);
        Assert.That(f.Log.Messages("ClosedAtShutdown").Single(), Does.Contain(nameof(Dispose_closes_a_connection_still_on_loan_after_the_grace_period_and_logs_who_took_it)));
        Assert.That(() => f.Pool.Return(held), Throws.Nothing, "a late return of a connection the shutdown closed is harmless");
        Assert.That(f.Pool.GetStatistics().Total, Is.Zero);
    }

    [Test]
    public void Clear_closes_idle_connections_and_makes_those_in_use_validate_when_they_come_back()
    {
        using var f = new FakePoolFixture();
        var idle = f.Pool.Rent();
        var held = f.Pool.Rent();
        var idleConnection = idle.Fake();
        var heldConnection = held.Physical();
        f.Pool.Return(idle);

        f.Pool.Clear();
        f.Pool.Return(held);
        f.Pool.Rent();

        Assert.That(idleConnection.IsDisposed, Is.True);
        Assert.That(f.Pings.ToArray(), Is.EqualTo(new[] { heldConnection }), "the connection in use at the clear is validated before its next use");
        Assert.That(f.Log.Messages("ConnectionEvicted").Single(), Does.Contain("Cleared"));
    }

    [Test]
    public void Sync_and_async_checkouts_share_one_path()
    {
        using var f = new FakePoolFixture();
        var handle = f.Pool.Rent();
        var c = handle.Physical();
        f.Pool.Return(handle);
        f.Time.Advance(TimeSpan.FromSeconds(1));

        var again = f.Pool.RentAsync().GetAwaiter().GetResult();

        Assert.That(again.Physical(), Is.SameAs(c));
        f.Driver.Verify(d => d.PingAsync(c, true, It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public void A_node_error_reported_on_a_held_connection_renews_every_connection_to_that_server()
    {
        using var f = new FakePoolFixture();
        var held = f.Pool.Rent();
        var idle = f.Pool.Rent();
        var heldConnection = held.Fake();
        var idleConnection = idle.Fake();
        f.Pool.Return(idle);

        f.Pool.ReportFailure(held, DriverExceptions.MySqlConnector(1290, "The MariaDB server is running with the --read-only option"));

        Assert.That(idleConnection.IsDisposed, Is.True, "idle connections to the read-only server are closed at once");
        f.Pool.Return(held);
        Assert.That(heldConnection.IsDisposed, Is.True, "the one that met the error is closed as it comes back");
        Assert.That(f.Log.Messages("ConnectionEvicted"), Has.All.Contain("HostUnhealthy"));
        var next = f.Pool.Rent();
        Assert.That(next.Fake().IsDisposed, Is.False, "a new connection: behind a proxy it may reach another node");
        f.Pool.Return(next);
    }

    [Test]
    public void After_a_node_error_on_a_lone_endpoint_new_connections_are_checked_and_an_unfit_one_is_opened_again()
    {
        using var f = new FakePoolFixture();
        var held = f.Pool.Rent();
        f.Pool.ReportFailure(held, DriverExceptions.MySqlData("The MariaDB server is running with the --read-only option", 1290));
        f.Pool.Return(held);
        var unfitLeft = 2; // a proxy still sends the next two connections to the read-only node
        f.Driver.Setup(d => d.CheckNodeAsync(It.IsAny<System.Data.Common.DbConnection>(), It.IsAny<bool>(), It.IsAny<TimeSpan>(), It.IsAny<bool>()))
            .Returns(() => new ValueTask<string?>(unfitLeft-- > 0 ? "the server is read-only" : null));

        var next = f.Pool.Rent();

        Assert.That(f.Connections, Has.Count.EqualTo(4), "the first, two unfit ones closed at once, and the one handed out");
        Assert.That(next.Fake().IsDisposed, Is.False);
        Assert.That(f.Log.Messages("ConnectionEvicted").Count(m => m.Contains("HostUnhealthy")), Is.EqualTo(3));
        f.Pool.Return(next);
        f.Pool.Return(f.Pool.Rent());
        Assert.That(f.Connections, Has.Count.EqualTo(4), "fit again: no more checks, no more connections");
    }

    [Test]
    public void A_lone_server_that_stays_unfit_is_used_as_it_is_after_the_validation_timeout()
    {
        using var f = new FakePoolFixture(o =>
        {
            o.ValidationTimeout = TimeSpan.FromMilliseconds(300);
            o.ConnectionTimeout = TimeSpan.FromSeconds(5);
        });
        var held = f.Pool.Rent();
        f.Pool.ReportFailure(held, DriverExceptions.MySqlData("The MariaDB server is running with the --read-only option", 1290));
        f.Pool.Return(held);
        f.Driver.Setup(d => d.CheckNodeAsync(It.IsAny<System.Data.Common.DbConnection>(), It.IsAny<bool>(), It.IsAny<TimeSpan>(), It.IsAny<bool>()))
            .Returns(() =>
            {
                f.Time.Advance(TimeSpan.FromMilliseconds(100)); // each check takes a while on the pool's clock
                return new ValueTask<string?>("the server is read-only");
            });

        var next = f.Pool.Rent();

        Assert.That(next.Fake().IsDisposed, Is.False, "handed out: nowhere else to go, and reads still work there");
        Assert.That(f.Log.Messages("LoneHostStillUnfit").Single(), Does.Contain("only host"));
        f.Pool.Return(next);
        var after = f.Connections.Count;
        f.Pool.Return(f.Pool.Rent());
        Assert.That(f.Connections, Has.Count.EqualTo(after), "no more checks");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
