using System;
using System.Collections.Generic;
using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Diagnostics;

namespace NHKeepAlive;

/// <content>Housekeeping: on the process's scheduler, one run of a pool at a time: retire, drop what the server closed, probe left hosts, report leaks, keep alive, refill the minimum.</content>
public sealed partial class KeepAlivePool
{
    private static readonly TimeSpan s_maxHousekeepingPeriod = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_minHousekeepingPeriod = TimeSpan.FromMilliseconds(50);

    /// <summary>How many idle connections the keepalive takes out at once to ping on the wire (see <see cref="KeepAlive"/>).</summary>
    private const int KeepAliveBatch = 32;

    // Housekeeping runs on the process's HousekeepingScheduler (a few dedicated threads for every pool). On
    // the real clock the scheduler runs it every period; on an injected clock (tests) a timer asks for each run.
    private readonly HousekeepingScheduler.Registration _housekeeping;
    private readonly ITimer? _timer;
    private readonly object _runLock = new();
    private TaskCompletionSource<bool>? _nextRun;
    private TaskCompletionSource<bool>? _currentRun;
    private int _sweepRequested;

    /// <summary>The housekeeping run requested, in progress or last finished (tests wait on it).</summary>
    internal Task HousekeepingTask
    {
        get
        {
            lock (_runLock)
                return (_nextRun ?? _currentRun)?.Task ?? Task.CompletedTask;
        }
    }

    /// <summary>How often housekeeping runs: a quarter of the keepalive interval, at most 30 s.</summary>
    internal TimeSpan HousekeepingPeriod
    {
        get
        {
            var period = s_maxHousekeepingPeriod;
            if (Facts.KeepAliveInterval is { } interval)
                period = Min(period, TimeSpan.FromTicks(interval.Ticks / 4));
            if (_options.LeakDetectionThreshold > TimeSpan.Zero)
                period = Min(period, TimeSpan.FromTicks(_options.LeakDetectionThreshold.Ticks / 2));
            if (_options.IdleTimeout > TimeSpan.Zero)
                period = Min(period, TimeSpan.FromTicks(_options.IdleTimeout.Ticks / 2));
            return period < s_minHousekeepingPeriod ? s_minHousekeepingPeriod : period;
        }
    }

    /// <summary>Pools whose housekeeping is registered with the scheduler (tests check that none outlives its pool).</summary>
    internal static int LiveHousekeepers => HousekeepingScheduler.Shared.Registered;

    /// <summary>When the first run is due: at once for a minimum to fill, else after a period (on the injected clock, its timer asks).</summary>
    private TimeSpan FirstHousekeeping => _time != TimeProvider.System ? Timeout.InfiniteTimeSpan : HousekeepingPeriod;

    /// <summary>Asks housekeeping to look for dropped handles now (<see cref="RecoverDropped"/>): a caller found no slot free.</summary>
    private void RequestSweep()
    {
        if (Interlocked.Exchange(ref _sweepRequested, 1) == 0)
            _housekeeping.Signal();
    }

    /// <summary>Asks for a housekeeping run now (the injected clock's timer does, and so does a MinIdle shortfall).</summary>
    private void RequestHousekeeping()
    {
        lock (_runLock)
            _nextRun ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _housekeeping.Signal();
    }

    /// <summary>Stops housekeeping, waiting a bounded time for a run in progress (its pings are aborted by the stopped watchdog).</summary>
    private void StopHousekeeping()
    {
        _timer?.Dispose();
        _housekeeping.Unregister(_options.ValidationTimeout + TimeSpan.FromSeconds(2), fromRun: t_running == this);
        lock (_runLock)
            _nextRun?.TrySetResult(false);
    }

    [ThreadStatic]
    private static KeepAlivePool? t_running;

    /// <summary>One turn of this pool on a scheduler thread: a sweep if asked, and a run when due by time or asked for.</summary>
    private void HousekeepingTurn(bool due)
    {
        if (IsDisposed)
            return;
        t_running = this;
        try
        {
            if (Interlocked.Exchange(ref _sweepRequested, 0) == 1)
                SweepDropped();

            TaskCompletionSource<bool> run;
            lock (_runLock)
            {
                if (!due && _nextRun is null)
                    return; // Asked for a sweep only.
                run = _nextRun ?? new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                _nextRun = null;
                _currentRun = run;
            }

            try
            {
                Housekeep();
            }
            catch (OperationCanceledException) when (IsDisposed)
            {
            }
#pragma warning disable CA1031 // Housekeeping must never stop: a failed run is logged and the next one runs.
            catch (Exception e)
#pragma warning restore CA1031
            {
                PoolLog.HousekeepingFailed(_logger, Name, e);
            }
            finally
            {
                // Re-armed before the run is reported done, so that whoever waits on it sees the next tick scheduled.
                RescheduleHousekeeping();
                run.TrySetResult(true);
            }
        }
        finally
        {
            t_running = null;
        }
    }

    private void RescheduleHousekeeping()
    {
        if (IsDisposed)
            return;
        if (_timer is null)
        {
            _housekeeping.DueIn(HousekeepingPeriod);
            return;
        }

        try
        {
            _timer.Change(HousekeepingPeriod, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile.
        }
    }

    /// <summary>A sweep for dropped handles on its own (a caller found no slot free), which must not take the thread down.</summary>
    private void SweepDropped()
    {
        try
        {
            RecoverDropped();
        }
#pragma warning disable CA1031 // The housekeeping thread must never die: a failed sweep is logged and the next one runs.
        catch (Exception e)
#pragma warning restore CA1031
        {
            PoolLog.HousekeepingFailed(_logger, Name, e);
        }
    }

    /// <summary>One housekeeping run, on the housekeeping thread: take back dropped handles' connections, retire, drop what the server closed, report leaks, keep alive, refill the minimum.</summary>
    private void Housekeep()
    {
        RecoverDropped();
        ProbeLeftHosts();
        RetireIdle();
        DropClosedIdle();
        ReportLeaks();
        KeepAlive();
        RefillMinIdle();
    }

    /// <summary>With a host list: tries each left host again (one connection, the health query); a fit one is taken back, and the pool fails back to it.</summary>
    private void ProbeLeftHosts()
    {
        if (!_hosts.IsCluster)
            return;
        foreach (var host in _hosts.DueForProbe(Now, HousekeepingPeriod))
        {
            if (IsDisposed || !_slots.Wait(0))
                return;
            try
            {
#pragma warning disable CA2012 // Synchronous: the ValueTask has completed.
                var pooled = OpenOnAsync(host, async: false).GetAwaiter().GetResult();
#pragma warning restore CA2012
                if (_hosts.MarkUp(host, Now))
                    PoolLog.HostBack(_logger, Name, host.Name, null);
                ToIdle(pooled, newest: true);
            }
            catch (Exception e) when (e is ConnectException or UnfitHostException or DbException or ServerFullException)
            {
                _hosts.MarkDown(host, e is UnfitHostException ? e.Message : $"could not connect ({e.InnerException?.Message ?? e.Message})", Now);
            }
            finally
            {
                _slots.Release();
            }
        }
    }

    private void RetireIdle()
    {
        var now = Now;
        var retired = new List<(PooledConnection Connection, Eviction Eviction)>();

        // Oldest first; stop taking idle-timed-out connections at the minimum.
        var live = _registry.Count;
        _registry.TakeIdle((pooled, taken) =>
        {
            Eviction? eviction = pooled.IsExpired(now) ? Eviction.MaxLifetime(pooled, now)
                : _hosts.Verdict(pooled.Host, pooled.HostGeneration) is { } verdict ? Eviction.FromVerdict(verdict)
                : _options.IdleTimeout > TimeSpan.Zero && now - pooled.LastUsed >= _options.IdleTimeout && live - taken > _options.MinIdle ? Eviction.IdleTimeout(pooled, now)
                : null;
            if (eviction is { } e)
                retired.Add((pooled, e));
            return eviction is not null;
        });

        foreach (var (pooled, eviction) in retired)
            Close(pooled, eviction);
    }

    /// <summary>Closes idle connections whose socket shows the server or the network closed them: no ping needed.</summary>
    private void DropClosedIdle()
    {
        if (!_options.SocketCheck)
            return;
        foreach (var pooled in _registry.IdleSnapshot())
        {
            if (pooled.CheckSocket() is SocketCheck.Open or SocketCheck.Unknown)
                continue;
            if (!_registry.TryTakeIdle(pooled))
                continue; // A caller took it meanwhile; its checkout checks it again.
            var closed = CheckSocket(pooled) ?? "closed by the server or the network";
            Close(pooled, Eviction.SocketClosed(pooled, closed, $"; found by the keepalive sweep after {PoolSettings.Show(Now - pooled.LastAlive)} idle"));
        }
    }

    private void ReportLeaks()
    {
        if (_options.LeakDetectionThreshold <= TimeSpan.Zero)
            return;
        var now = Now;
        foreach (var pooled in _registry.LeasedSnapshot())
        {
            if (pooled.LeakReported || now - pooled.LeasedAt < _options.LeakDetectionThreshold)
                continue;
            pooled.LeakReported = true;
            PoolLog.LeakSuspected(_logger, Name, pooled.Id, (now - pooled.LeasedAt).TotalSeconds, pooled.LeaseStack ?? "(stack not captured)", null);
        }
    }

    /// <summary>
    /// Pings every idle connection that has idled a keepalive interval or predates the current generation,
    /// in batches: a batch's pings on the wire (<see cref="WirePing"/>) are all written before any reply
    /// is read, so that their replies, arriving together, wake the runtime's socket engine and a
    /// thread-pool worker once for the batch rather than once for each connection. The others are pinged
    /// one at a time through the driver.
    /// </summary>
    private void KeepAlive()
    {
        if (Facts.KeepAliveInterval is not { } interval)
            return;
        var now = Now;
        var generation = Volatile.Read(ref _generation);
        var due = _registry.IdleSnapshot().FindAll(p => p.Generation != generation || now - p.LastAlive >= interval);

        var batch = new List<PooledConnection>(KeepAliveBatch);
        var onWire = new List<(ValidationWatchdog.Watch Watch, bool Sent, long Deadline)>(KeepAliveBatch);
        for (var next = 0; next < due.Count;)
        {
            batch.Clear();
            onWire.Clear();
            var slotsLeft = TakeForKeepAlive(due, ref next, batch, out var wireBatch);
            var done = 0; // pings ended, each connection back or closed and its slot given back
            try
            {
                if (batch.Count > 0 && !wireBatch)
                {
#pragma warning disable CA2012 // Synchronous: the ValueTask has completed.
                    var outcome = PingAsync(batch[0], _options.ValidationTimeout, async: false).GetAwaiter().GetResult();
#pragma warning restore CA2012
                    KeepAlivePinged(batch[0], outcome, generation, now);
                    done++;
                    _slots.Release();
                }
                else
                {
                    foreach (var pooled in batch)
                    {
                        var watch = _watchdog.Start(pooled, _options.ValidationTimeout);
                        var deadline = WirePing.DeadlineAfter(_options.ValidationTimeout);
                        onWire.Add((watch, WirePing.Send(pooled.Socket!), deadline));
                    }

                    for (var i = 0; i < batch.Count; i++)
                    {
                        var pooled = batch[i];
                        var (watch, sent, deadline) = onWire[i];
                        var result = sent ? WirePing.Receive(pooled.Socket!, deadline) : WirePingResult.Failed;
                        KeepAlivePinged(pooled, WireOutcome(pooled, result, _watchdog.Finish(watch)), generation, now);
                        done++;
                        _slots.Release();
                    }
                }
            }
            finally
            {
                // Only after an exception above: what is left of the batch is closed, once, and its slot given back.
                for (var i = done; i < batch.Count; i++)
                    AbandonKeepAlive(batch[i], i < onWire.Count ? onWire[i].Watch : null);
            }

            if (!slotsLeft)
                return;
        }
    }

    private void AbandonKeepAlive(PooledConnection pooled, ValidationWatchdog.Watch? watch)
    {
        try
        {
            if (watch is not null)
                _watchdog.Finish(watch);
            Close(pooled, Eviction.KeepAliveInterrupted());
        }
#pragma warning disable CA1031 // Whatever failed, the slot must come back and the housekeeping thread go on.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// Takes up to <see cref="KeepAliveBatch"/> of the due connections still idle out of the idle list for
    /// their ping, each with a slot (a connection out for its ping still counts against MaxPoolSize). Only
    /// pings on the wire share a batch: a driver's ping holds its connection (with a blackholed path, for
    /// the validation timeout) while the rest of its batch would wait out of the idle list. Whether the
    /// batch goes on the wire (<paramref name="wireBatch"/>) is decided once, with its first connection: the
    /// wire pings can be switched off meanwhile (<see cref="WireOutcome"/>). False when no slot was free:
    /// every connection is busy, and nothing idles long enough to need a ping.
    /// </summary>
    private bool TakeForKeepAlive(List<PooledConnection> due, ref int next, List<PooledConnection> batch, out bool wireBatch)
    {
        wireBatch = false;
        while (next < due.Count && batch.Count < KeepAliveBatch)
        {
            if (IsDisposed || !_slots.Wait(0))
                return false;
            var pooled = due[next];
            var wire = PingsOnWire(pooled);
            if (batch.Count > 0 && !(wireBatch && wire))
            {
                _slots.Release(); // Its own batch, the next one.
                return true;
            }

            next++;
            if (_registry.TryTakeIdle(pooled))
            {
                batch.Add(pooled);
                wireBatch = wire;
                continue;
            }

            _slots.Release(); // A caller took it meanwhile: its checkout validates it.
        }

        return true;
    }

    /// <summary>What a keepalive ping's outcome does to its connection: back to the idle list, or closed.</summary>
    private void KeepAlivePinged(PooledConnection pooled, PingOutcome outcome, int generation, TimeSpan now)
    {
        PoolLog.KeepAlivePinged(_logger, Name, pooled.Id, (now - pooled.LastAlive).TotalSeconds, outcome.ToString(), null);
        _counters.KeepAlivePing(outcome == PingOutcome.Ok);
        if (outcome == PingOutcome.Ok)
        {
            pooled.LastAlive = Now;
            pooled.Generation = generation;
            ToIdle(pooled, newest: false);
            return;
        }

        if (outcome == PingOutcome.Unfit)
        {
            CloseOnUnfitHost(pooled);
            return;
        }

        Close(pooled, outcome == PingOutcome.Timeout
            ? Eviction.KeepAliveTimedOut(pooled, _options.ValidationTimeout)
            : Eviction.KeepAliveFailed(pooled, now - pooled.LastAlive));
    }

    private void RefillMinIdle()
    {
        while (!IsDisposed)
        {
            if (_registry.Count >= _options.MinIdle)
                return;

            if (!_slots.Wait(0))
                return;
            try
            {
#pragma warning disable CA2012 // Synchronous: the ValueTask has completed.
                var pooled = CreateAsync(async: false).GetAwaiter().GetResult();
#pragma warning restore CA2012
                ToIdle(pooled, newest: false);
            }
            catch (Exception e) when (e is ConnectException or DbException or TimeoutException or ServerFullException)
            {
                PoolLog.MinIdleRefillFailed(_logger, Name, e);
                return;
            }
            finally
            {
                _slots.Release();
            }
        }
    }
}
