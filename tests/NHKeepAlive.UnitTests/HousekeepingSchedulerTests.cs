using System;
using System.Threading;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>
/// The housekeeping scheduler wakes a waiting thread only for a run due before that thread wakes by itself (a pool
/// per tenant built by the hundred must not wake it each time), and never leaves a run waiting past its time.
/// Each test has a scheduler of its own; a run signals an event the test waits on.
/// </summary>
[TestFixture]
public class HousekeepingSchedulerTests
{
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(10);

    private static void WaitUntilIdle(HousekeepingScheduler scheduler) =>
        Assert.That(SpinWait.SpinUntil(() => scheduler.Waiting > 0, s_bound), Is.True, "the scheduler's thread waits for work");

    [Test]
    public void A_pool_registered_while_the_thread_waits_with_nothing_due_by_time_runs_when_due()
    {
        var scheduler = new HousekeepingScheduler();
        var idle = scheduler.Register(_ => { }, Timeout.InfiniteTimeSpan);
        WaitUntilIdle(scheduler); // with no due time: until signalled

        using var ran = new ManualResetEventSlim();
        var pool = scheduler.Register(_ => ran.Set(), TimeSpan.FromMilliseconds(50));

        Assert.That(ran.Wait(s_bound), Is.True, "the new pool's first run");
        pool.Unregister(TimeSpan.FromSeconds(1), fromRun: false);
        idle.Unregister(TimeSpan.FromSeconds(1), fromRun: false);
    }

    [Test]
    public void A_run_moved_before_the_waiting_thread_wakes_runs_at_its_new_time()
    {
        var scheduler = new HousekeepingScheduler();
        using var ran = new ManualResetEventSlim();
        var pool = scheduler.Register(_ => ran.Set(), TimeSpan.FromMinutes(5));
        WaitUntilIdle(scheduler); // until the run is due, 5 min from now

        pool.DueIn(TimeSpan.FromMilliseconds(50));

        Assert.That(ran.Wait(s_bound), Is.True, "the run, 50 ms after it was moved");
        pool.Unregister(TimeSpan.FromSeconds(1), fromRun: false);
    }

    [Test]
    public void A_pool_due_after_the_waiting_thread_wakes_runs_once_that_thread_is_up()
    {
        var scheduler = new HousekeepingScheduler();
        using var first = new ManualResetEventSlim();
        using var second = new ManualResetEventSlim();
        var a = scheduler.Register(_ => first.Set(), TimeSpan.FromMilliseconds(200));
        WaitUntilIdle(scheduler); // until a is due

        var b = scheduler.Register(_ => second.Set(), TimeSpan.FromMilliseconds(300)); // wakes nobody: the thread is up before then

        Assert.That(first.Wait(s_bound), Is.True, "a's run");
        Assert.That(second.Wait(s_bound), Is.True, "b's run, found by the thread that woke for a");
        a.Unregister(TimeSpan.FromSeconds(1), fromRun: false);
        b.Unregister(TimeSpan.FromSeconds(1), fromRun: false);
    }
}
