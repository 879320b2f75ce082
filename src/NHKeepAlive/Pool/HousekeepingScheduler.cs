using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;

namespace NHKeepAlive;

/// <summary>
/// Runs every pool's housekeeping in the process (keepalive, idle retirement, MinIdle refill, leak reports,
/// host probes, sweeps for dropped handles) on a small set of dedicated threads, so that a thousand tenant
/// pools cost a few threads, not a thousand. The threads are the scheduler's own, not the thread pool's: a
/// starved thread pool cannot stop a keepalive. One pool runs on one thread at a time. Fairness: a pool whose
/// run is slow (its pings wait on a blackholed path for the validation timeout) holds only its own thread: a thread
/// that starts a run while other pools are registered and no other thread waits for them starts another thread
/// first, up to <see cref="MaxThreads"/>, so that whoever falls due during the run finds a thread; threads with
/// nothing to do for a while end, down to one.
/// </summary>
internal sealed class HousekeepingScheduler
{
    /// <summary>The most threads the scheduler runs at once: what stands between every pool's keepalive and as many slow pools.</summary>
    internal const int MaxThreads = 4;

    /// <summary>How long a thread beyond the first waits for work before it ends.</summary>
    private static readonly TimeSpan s_idleExit = TimeSpan.FromSeconds(30);

    private readonly object _lock = new();
    private readonly List<Registration> _registrations = [];
    private int _threads;
    private int _waiting;

    // No later than when the first waiting thread wakes by itself (a Stopwatch timestamp; long.MaxValue: unknown). A run
    // due at or after it needs no wake-up: a thread will be up by then and find it. Kept at or above the true moment, so
    // that a wake-up is never skipped that was needed: lowered as each thread goes to wait, forgotten when one wakes.
    private long _wakeBy = long.MaxValue;

    /// <summary>The one scheduler of the process.</summary>
    public static HousekeepingScheduler Shared { get; } = new();

    /// <summary>The scheduler's threads alive now.</summary>
    public int Threads
    {
        get
        {
            lock (_lock)
                return _threads;
        }
    }

    /// <summary>The scheduler's threads waiting for work now (tests).</summary>
    internal int Waiting
    {
        get
        {
            lock (_lock)
                return _waiting;
        }
    }

    /// <summary>Pools registered now (tests check that none outlives its pool).</summary>
    public int Registered
    {
        get
        {
            lock (_lock)
                return _registrations.Count;
        }
    }

    /// <summary>Registers <paramref name="run"/>, first due after <paramref name="delay"/> (<see cref="Timeout.InfiniteTimeSpan"/>: only when signalled).</summary>
    /// <param name="run">One housekeeping run of a pool; true when the run was due by time (not only signalled).</param>
    /// <param name="delay">When the first run is due.</param>
    public Registration Register(Action<bool> run, TimeSpan delay)
    {
        var registration = new Registration(this, run);
        lock (_lock)
        {
            registration.DueAt = DueAfter(delay);
            _registrations.Add(registration);

            // A thread that waits and wakes before the new pool is due takes it then: a pool per tenant built by the
            // hundred wakes nobody (each wake-up scans every registration, under the lock the builders wait on).
            if (_waiting == 0 || registration.DueAt < _wakeBy)
                WakeOrAddThread();
        }

        return registration;
    }

    private static long DueAfter(TimeSpan delay) =>
        delay == Timeout.InfiniteTimeSpan ? long.MaxValue : Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);

    private void WakeOrAddThread()
    {
        if (_waiting > 0)
        {
            Monitor.PulseAll(_lock);
            return;
        }

        if (_threads < MaxThreads)
        {
            _threads++;
            new Thread(Work) { IsBackground = true, Name = "NHKeepAlive housekeeping" }.Start();
        }
    }

    private void Work()
    {
        var idleSince = Stopwatch.StartNew();
        while (true)
        {
            Registration? next;
            bool due;
            lock (_lock)
            {
                next = TakeDue(out due, out var wait);
                if (next is null)
                {
                    if (_threads > 1 && idleSince.Elapsed >= s_idleExit || _registrations.Count == 0 && idleSince.Elapsed >= s_idleExit)
                    {
                        _threads--;
                        return;
                    }

                    var timeout = wait < s_idleExit ? wait : s_idleExit; // Timeout.InfiniteTimeSpan (nothing due by time) is below it
                    var wakeAt = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
                    if (wakeAt < _wakeBy)
                        _wakeBy = wakeAt;
                    _waiting++;
                    Monitor.Wait(_lock, timeout);
                    _waiting--;
                    _wakeBy = long.MaxValue; // Which of the others wakes when is not known now: every change wakes one until a thread waits again.
                    continue;
                }

                // Other registrations and nobody left waiting for them: a thread more, so that this run, however slow,
                // delays nobody else (a run that falls due while every thread is busy would find no one to start a thread).
                if (_waiting == 0 && _threads < MaxThreads && HasWorkBeyond(next))
                {
                    _threads++;
                    new Thread(Work) { IsBackground = true, Name = "NHKeepAlive housekeeping" }.Start();
                }
            }

            try
            {
                next.Run(due);
            }
#pragma warning disable CA1031 // A pool's run logs its own failures; nothing may end a housekeeping thread.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
            finally
            {
                lock (_lock)
                {
                    next.Running = false;
                    Monitor.PulseAll(_lock);
                }

                idleSince.Restart();
            }
        }
    }

    /// <summary>The registration due first (signalled, or its time come), marked running; else null and how long to wait. Under the lock.</summary>
    private Registration? TakeDue(out bool due, out TimeSpan wait)
    {
        var now = Stopwatch.GetTimestamp();
        Registration? best = null;
        var earliest = long.MaxValue;
        foreach (var registration in _registrations)
        {
            if (registration.Running)
                continue;
            var at = registration.Signalled ? long.MinValue : registration.DueAt;
            if (at < earliest)
            {
                earliest = at;
                best = registration;
            }
        }

        due = false;
        if (best is null || earliest > now)
        {
            wait = earliest == long.MaxValue ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds((double)(earliest - now) / Stopwatch.Frequency);
            return null;
        }

        wait = TimeSpan.Zero;
        due = best.DueAt <= now;
        if (due)
            best.DueAt = long.MaxValue; // The run says when it is due next (DueIn); one that does not is run again only when signalled, never in a loop.
        best.Signalled = false;
        best.Running = true;
        return best;
    }

    /// <summary>Whether a registration other than <paramref name="taken"/> will fall due (is signalled, or has a due time). Under the lock.</summary>
    private bool HasWorkBeyond(Registration taken)
    {
        foreach (var registration in _registrations)
        {
            if (!ReferenceEquals(registration, taken) && !registration.Running && (registration.Signalled || registration.DueAt != long.MaxValue))
                return true;
        }

        return false;
    }

    /// <summary>One pool's place in the scheduler.</summary>
    internal sealed class Registration(HousekeepingScheduler scheduler, Action<bool> run)
    {
        internal long DueAt { get; set; }

        internal bool Signalled { get; set; }

        internal bool Running { get; set; }

        internal void Run(bool due) => run(due);

        /// <summary>Asks for a run now.</summary>
        public void Signal()
        {
            lock (scheduler._lock)
            {
                Signalled = true;
                scheduler.WakeOrAddThread();
            }
        }

        /// <summary>Sets when the next run is due by time (<see cref="Timeout.InfiniteTimeSpan"/>: only when signalled).</summary>
        public void DueIn(TimeSpan delay)
        {
            lock (scheduler._lock)
            {
                DueAt = DueAfter(delay);
                if (DueAt < scheduler._wakeBy)
                    Monitor.PulseAll(scheduler._lock);
            }
        }

        /// <summary>Leaves the scheduler, waiting up to <paramref name="grace"/> for a run in progress to end (not when called from that run).</summary>
        public void Unregister(TimeSpan grace, bool fromRun)
        {
            var deadline = Stopwatch.StartNew();
            lock (scheduler._lock)
            {
                scheduler._registrations.Remove(this);
                while (Running && !fromRun && deadline.Elapsed < grace)
                    Monitor.Wait(scheduler._lock, grace - deadline.Elapsed);
                Monitor.PulseAll(scheduler._lock);
            }
        }
    }
}
