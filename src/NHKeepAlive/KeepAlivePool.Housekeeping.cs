using System;
using System.Collections.Generic;
using System.Data;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Diagnostics;

namespace NHKeepAlive;

/// <content>Housekeeping: one thread per pool, one run at a time: retire, drop what the server closed, probe left hosts, report leaks, keep alive, refill the minimum.</content>
public sealed partial class KeepAlivePool
{
    /// <summary>Asks the housekeeping thread for a run (the injected clock's timer does, and so does a MinIdle shortfall).</summary>
    private void RequestHousekeeping()
    {
        lock (_runLock)
            _nextRun ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            _wake.Set();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Housekeeping threads alive in this process (tests check that none outlives its pool).</summary>
    internal static int LiveHousekeepers => Volatile.Read(ref s_liveHousekeepers);

    private static int s_liveHousekeepers;

    private void HousekeepingLoop()
    {
        Interlocked.Increment(ref s_liveHousekeepers);
        try
        {
            HousekeepUntilDisposed();
        }
        finally
        {
            Interlocked.Decrement(ref s_liveHousekeepers);
        }
    }

    private void HousekeepUntilDisposed()
    {
        while (true)
        {
            // On the real clock the thread keeps its own time: a timer callback would wait for a
            // thread-pool thread, and a starved pool would then stop the keepalive.
            if (_timer is null)
                _wake.WaitOne(HousekeepingPeriod);
            else
                _wake.WaitOne();

            TaskCompletionSource<bool> run;
            lock (_runLock)
            {
                run = _nextRun ?? new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                _nextRun = null;
                _currentRun = run;
            }

            if (IsDisposed)
            {
                run.TrySetResult(false);
                return;
            }

            try
            {
                Housekeep();
            }
            catch (OperationCanceledException) when (IsDisposed)
            {
            }
#pragma warning disable CA1031 // The housekeeping thread must never die: a failed run is logged and the next one runs.
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
    }

    private void RescheduleHousekeeping()
    {
        if (IsDisposed)
            return;
        try
        {
            _timer?.Change(HousekeepingPeriod, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile.
        }
    }

    /// <summary>One housekeeping run, on the housekeeping thread: retire, drop what the server closed, report leaks, keep alive, refill the minimum.</summary>
    private void Housekeep()
    {
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
            catch (Exception e) when (e is ConnectException or UnfitHostException or DbException)
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
        var retired = new List<(PooledConnection Connection, EvictionReason Reason, string Detail)>();
        lock (_lock)
        {
            // Oldest first; stop taking idle-timed-out connections at the minimum.
            for (var i = 0; i < _idle.Count; i++)
            {
                var pooled = _idle[i];
                if (pooled.IsExpired(now))
                {
                    retired.Add((pooled, EvictionReason.MaxLifetime, LifetimeDetail(pooled, now)));
                }
                else if (_hosts.Verdict(pooled.Host, pooled.HostGeneration) is { } verdict)
                {
                    retired.Add((pooled, verdict.Reason, verdict.Detail));
                }
                else if (_options.IdleTimeout > TimeSpan.Zero && now - pooled.LastUsed >= _options.IdleTimeout && _all.Count - retired.Count > _options.MinIdle)
                {
                    retired.Add((pooled, EvictionReason.IdleTimeout, $"idle for {PoolSettings.Show(now - pooled.LastUsed)}"));
                }
                else
                {
                    continue;
                }

                _idle.RemoveAt(i--);
                Move(pooled, PooledConnectionState.Checking);
            }
        }

        foreach (var (pooled, reason, detail) in retired)
            Close(pooled, reason, detail);
    }

    /// <summary>Closes idle connections whose socket shows the server or the network closed them: no ping needed.</summary>
    private void DropClosedIdle()
    {
        if (!_options.SocketCheck)
            return;
        List<PooledConnection> idle;
        lock (_lock)
            idle = [.. _idle];
        foreach (var pooled in idle)
        {
            if (pooled.CheckSocket() is SocketCheck.Open or SocketCheck.Unknown)
                continue;
            lock (_lock)
            {
                if (pooled.State != PooledConnectionState.Idle)
                    continue; // A caller took it meanwhile; its checkout checks it again.
                _idle.Remove(pooled);
                Move(pooled, PooledConnectionState.Checking);
            }

            var closed = CheckSocket(pooled) ?? "closed by the server or the network";
            Close(pooled, EvictionReason.SocketClosed, $"{closed}; found by the keepalive sweep after {PoolSettings.Show(Now - pooled.LastAlive)} idle");
            AdvanceGeneration($"connection {pooled.Id} was {closed}");
        }
    }

    private void ReportLeaks()
    {
        if (_options.LeakDetectionThreshold <= TimeSpan.Zero)
            return;
        var now = Now;
        List<PooledConnection> leaked = [];
        lock (_lock)
        {
            foreach (var pooled in _all.Values)
            {
                if (pooled.State == PooledConnectionState.Leased && !pooled.LeakReported && now - pooled.LeasedAt >= _options.LeakDetectionThreshold)
                {
                    pooled.LeakReported = true;
                    leaked.Add(pooled);
                }
            }
        }

        foreach (var pooled in leaked)
            PoolLog.LeakSuspected(_logger, Name, pooled.Id, (now - pooled.LeasedAt).TotalSeconds, pooled.LeaseStack ?? "(stack not captured)", null);
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
        List<PooledConnection> due;
        int generation;
        lock (_lock)
        {
            generation = _generation;
            due = _idle.FindAll(p => p.Generation != generation || now - p.LastAlive >= interval);
        }

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
            Close(pooled, EvictionReason.KeepAliveFailed, "its keepalive ping was interrupted by an error in the pool");
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
            lock (_lock)
            {
                if (pooled.State == PooledConnectionState.Idle)
                {
                    _idle.Remove(pooled);
                    Move(pooled, PooledConnectionState.Checking);
                    batch.Add(pooled);
                    wireBatch = wire;
                    continue;
                }
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

        var detail = outcome == PingOutcome.Timeout
            ? $"no answer to the keepalive ping within {PoolSettings.Show(_options.ValidationTimeout)}; the socket was aborted"
            : $"dead on the keepalive ping after {PoolSettings.Show(now - pooled.LastAlive)} idle";
        Close(pooled, EvictionReason.KeepAliveFailed, detail);
        AdvanceGeneration($"connection {pooled.Id} failed its keepalive ping");
    }

    private void RefillMinIdle()
    {
        while (!IsDisposed)
        {
            lock (_lock)
            {
                if (_all.Count >= _options.MinIdle)
                    return;
            }

            if (!_slots.Wait(0))
                return;
            try
            {
#pragma warning disable CA2012 // Synchronous: the ValueTask has completed.
                var pooled = CreateAsync(async: false).GetAwaiter().GetResult();
#pragma warning restore CA2012
                ToIdle(pooled, newest: false);
            }
            catch (Exception e) when (e is ConnectException or DbException or TimeoutException)
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
