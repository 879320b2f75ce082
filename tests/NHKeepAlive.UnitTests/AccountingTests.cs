using System;
using System.Data.Common;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Moq;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>Every physical connection in one state at a time and closed once: races gated on a fake driver.</summary>
[TestFixture]
public class AccountingTests
{
    [Test]
    public void A_return_racing_dispose_closes_the_connection_instead_of_parking_it_in_a_dead_pool()
    {
        using var f = new FakePoolFixture();
        var handle = f.Pool.Rent();
        var c = handle.Fake();

        // The return's cleanup runs outside the lock; dispose the pool right there.
        f.Driver.Setup(d => d.IsInTransaction(c)).Returns(() =>
        {
            Assert.That(Task.Run(f.Pool.Dispose).Wait(TimeSpan.FromSeconds(10)), Is.True);
            return false;
        });
        f.Pool.Return(handle);

        Assert.That(c.IsDisposed, Is.True, "closed, not left in the idle list of a disposed pool");
        var stats = f.Pool.GetStatistics();
        Assert.That((stats.Total, stats.Evicted), Is.EqualTo((0, 1L)));
    }

    [Test]
    public async Task A_cancelled_checkout_returns_at_once_during_a_slow_connect_and_the_connection_goes_idle()
    {
        var gate = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var f = new FakePoolFixture();
        f.BeforeOpen = () => gate.Task;
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        var watch = Stopwatch.StartNew();
        Assert.That(async () => await f.Pool.RentAsync(cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromMilliseconds(200 + 300)), "returned within moments of the cancel");
        Assert.That(f.Pool.GetStatistics().Opening, Is.EqualTo(1), "the connect goes on, accounted for");

        gate.SetResult(true);
        Assert.That(() => f.Pool.GetStatistics().Idle, Is.EqualTo(1).After(5000, 10), "what the connect produced went idle");
        var next = await f.Pool.RentAsync();
        Assert.That(f.Connections, Has.Count.EqualTo(1), "the next caller got it: nothing leaked, nothing opened twice");
        f.Pool.Return(next);
    }

    [Test]
    public void Dispose_during_a_connect_closes_what_the_connect_produces()
    {
        var gate = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var f = new FakePoolFixture();
        f.BeforeOpen = () => gate.Task;
        var rent = f.Pool.RentAsync();

        f.Pool.Dispose();
        gate.SetResult(true);

        Assert.That(() => rent.Wait(TimeSpan.FromSeconds(5)), Throws.InstanceOf<AggregateException>().With.InnerException.TypeOf<ObjectDisposedException>());
        Assert.That(f.Connections.Single().IsDisposed, Is.True);
        Assert.That(f.Pool.GetStatistics().Total, Is.Zero);
    }

    [Test]
    public void The_minimum_idle_is_filled_right_after_the_pool_is_built_without_waiting_for_a_tick()
    {
        using var f = new FakePoolFixture(o => o.MinIdle = 3);

        Assert.That(f.Pool.HousekeepingTask.Wait(TimeSpan.FromSeconds(5)), Is.True);

        Assert.That(f.Pool.GetStatistics().Idle, Is.EqualTo(3), "no clock time passed");
    }

    [TestCase(false, "closed by the server")]
    [TestCase(true, "sent bytes while idle")]
    public void An_idle_connection_whose_socket_the_far_end_closed_or_wrote_to_is_evicted_inside_the_bypass_window(bool write, string expected)
    {
        using var pair = new LoopbackPair();
        var (client, server) = (pair.Client, pair.Server);
        using var f = new FakePoolFixture();
        f.Driver.Setup(d => d.FindSocket(It.IsAny<DbConnection>())).Returns((client.Client, false));
        var first = f.Pool.Rent();
        var physical = first.Physical();
        f.Pool.Return(first);

        if (write)
            server.Send([0xFF, 0x01, 0x02]);
        else
            server.Shutdown(SocketShutdown.Send);
        Assert.That(() => client.Client.Poll(0, SelectMode.SelectRead), Is.True.After(2000, 5));
        var second = f.Pool.Rent();

        Assert.That(second.Physical(), Is.Not.SameAs(physical));
        Assert.That(f.Pings, Is.Empty, "found without a ping");
        var stats = f.Pool.GetStatistics();
        Assert.That((stats.SocketCheckFailures, stats.Generation), Is.EqualTo((1L, 1)));
        Assert.That(f.Log.Messages("ConnectionEvicted").Single(), Does.Contain("SocketClosed").And.Contain(expected));
        f.Pool.Return(second);
    }

    [Test]
    public void With_the_socket_check_off_a_closed_socket_is_left_to_the_ping()
    {
        using var pair = new LoopbackPair();
        var (client, server) = (pair.Client, pair.Server);
        using var f = new FakePoolFixture(o => o.SocketCheck = false);
        f.Driver.Setup(d => d.FindSocket(It.IsAny<DbConnection>())).Returns((client.Client, false));
        var first = f.Pool.Rent();
        var physical = first.Physical();
        f.Pool.Return(first);

        server.Shutdown(SocketShutdown.Send);

        Assert.That(f.Pool.Rent().Physical(), Is.SameAs(physical), "inside the window and unchecked, as before the socket check existed");
        Assert.That(f.Pool.GetStatistics().SocketCheckFailures, Is.Zero);
    }

    [Test]
    public void Connections_evicted_and_created_add_up_to_what_is_open()
    {
        using var f = new FakePoolFixture(o => o.MaxPoolSize = 5);
        var random = new Random(42);
        var held = new System.Collections.Generic.List<DbConnection>();
        for (var i = 0; i < 500; i++)
        {
            if (held.Count < 5 && random.Next(2) == 0)
            {
                held.Add(f.Pool.Rent());
            }
            else if (held.Count > 0)
            {
                var c = held[random.Next(held.Count)];
                held.Remove(c);
                if (random.Next(4) == 0)
                    c.Fake().Break();
                f.Pool.Return(c);
            }

            f.Advance(TimeSpan.FromMilliseconds(random.Next(0, 800))); // and wait for the housekeeping run it starts
            var s = f.Pool.GetStatistics();
            Assert.That(s.Created - s.Evicted, Is.EqualTo(s.Total), $"step {i}");
            Assert.That(f.Connections.Count(c => !c.IsDisposed), Is.EqualTo(s.Total), $"step {i}: open connections");
        }

        held.ForEach(c => f.Pool.Return(c));
    }

    /// <summary>Two ends of a real loopback TCP connection.</summary>
}
