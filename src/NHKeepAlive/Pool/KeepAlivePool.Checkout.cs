using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Diagnostics;

namespace NHKeepAlive;

/// <content>Checkout: a slot, then the newest idle connection fit to hand out, or a new one.</content>
public sealed partial class KeepAlivePool
{
    /// <summary>How long a caller waits for a slot between two requests for a sweep of dropped handles (see <see cref="RecoverDropped"/>).</summary>
    private static readonly TimeSpan s_sweepRequestInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>A handle opened as <see cref="KeepAliveConnection.Open"/> opens one: inside a TransactionScope it is enlisted (unless AutoEnlist=false).</summary>
    private KeepAliveConnection OpenHandle()
    {
        var handle = new KeepAliveConnection(this, null);
        handle.Open();
        return handle;
    }

    private async Task<KeepAliveConnection> OpenHandleAsync(CancellationToken cancellationToken)
    {
        var handle = new KeepAliveConnection(this, null);
        await handle.OpenAsync(cancellationToken).ConfigureAwait(false);
        return handle;
    }

    /// <summary>Gives <paramref name="handle"/> a physical connection (its <see cref="KeepAliveConnection.Open"/>).</summary>
    internal void Attach(KeepAliveConnection handle)
    {
        // With async: false every await inside completes synchronously, so the ValueTask is done.
#pragma warning disable CA2012
        AcquireAsync(handle, async: false, CancellationToken.None).GetAwaiter().GetResult();
#pragma warning restore CA2012
    }

    /// <summary>Gives <paramref name="handle"/> a physical connection without blocking a thread.</summary>
    internal Task AttachAsync(KeepAliveConnection handle, CancellationToken cancellationToken) =>
        AcquireAsync(handle, async: true, cancellationToken).AsTask();

    private async ValueTask AcquireAsync(KeepAliveConnection handle, bool async, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        var ambient = AutoEnlist ? System.Transactions.Transaction.Current : null;
        if (ambient is not null && TryReclaim(handle, ambient))
            return;
        var started = _time.GetTimestamp();
        var waitStarted = Stopwatch.GetTimestamp();
        switch (await WaitForSlotAsync(async, waitStarted, handle, ambient, cancellationToken).ConfigureAwait(false))
        {
            case SlotWait.TimedOut:
                throw TimeoutError();
            case SlotWait.Reclaimed:
                return;
        }

        ValueTask<PooledConnection> work;
        try
        {
            ThrowIfDisposed();
            work = TakeHealthyAsync(async, waitStarted);
        }
        catch
        {
            _slots.Release();
            throw;
        }

        // Connecting and validating are bounded by their own timeouts and run on whatever the caller
        // does: a caller that cancels returns now, and what the work produces goes to the idle list.
        PooledConnection pooled;
        try
        {
            if (!work.IsCompleted && async && cancellationToken.CanBeCanceled)
            {
                var task = work.AsTask();
                if (!await CompletesBeforeAsync(task, cancellationToken).ConfigureAwait(false))
                {
                    _ = task.ContinueWith(static (t, s) => ((KeepAlivePool)s!).Abandoned(t), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    throw new CheckoutAbandonedException(cancellationToken);
                }

                pooled = await task.ConfigureAwait(false);
            }
            else
            {
                pooled = await work.ConfigureAwait(false);
            }

            ToLeased(pooled, handle);
        }
        catch (Exception e) when (e is not CheckoutAbandonedException)
        {
            _slots.Release();
            throw;
        }

        if (_options.LeakDetectionThreshold > TimeSpan.Zero)
            pooled.LeaseStack = new StackTrace(1, true).ToString();
        _metrics.Waited(_time.GetElapsedTime(started));
    }

    /// <summary>
    /// A transaction could not begin because the handle's connection is gone: closes it and puts a live
    /// connection under the same handle, in the same slot, so that the caller's <c>BEGIN</c> can run again. Only
    /// the handle calls it, and only where no statement of the caller's can be lost (no transaction is open).
    /// </summary>
    internal void StartAgain(KeepAliveConnection handle, string disconnect)
    {
#pragma warning disable CA2012 // Synchronous: the ValueTask has completed.
        StartAgainAsync(handle, disconnect, async: false).GetAwaiter().GetResult();
#pragma warning restore CA2012
    }

    /// <summary><see cref="StartAgain"/> without blocking a thread.</summary>
    internal Task StartAgainAsync(KeepAliveConnection handle, string disconnect, CancellationToken cancellationToken)
    {
        _ = cancellationToken; // A connect is bounded by the driver's connect timeout, never cancelled halfway (see CreateAsync).
        return StartAgainAsync(handle, disconnect, async: true).AsTask();
    }

    private async ValueTask StartAgainAsync(KeepAliveConnection handle, string disconnect, bool async)
    {
        var dead = handle.Pooled!;
        var stack = dead.LeaseStack;
        handle.Detach(final: false);
        if (!_registry.TryEndLease(dead, handle.LeaseId, PooledConnectionState.Checking))
            throw handle.NotOpen(); // Taken back meanwhile (the pool shut down): nothing to start again on.
        Close(dead, Eviction.Disconnected(dead, $"{disconnect}; met as a transaction began, which begins again on another connection"));
        _counters.StartAgain();
        PoolLog.TransactionStartedAgain(_logger, Name, dead.Id, disconnect, null);
        PooledConnection pooled;
        try
        {
            ThrowIfDisposed();
            pooled = await TakeHealthyAsync(async, Stopwatch.GetTimestamp()).ConfigureAwait(false);
            ToLeased(pooled, handle);
        }
        catch
        {
            _slots.Release();
            throw;
        }

        pooled.LeaseStack = stack;
    }

    /// <summary>
    /// Waits for a slot within the connection timeout. A caller that finds none free asks housekeeping to
    /// look for handles the application dropped (and again every <see cref="s_sweepRequestInterval"/> it
    /// waits), so that a connection leaked by a collected handle reaches it in milliseconds, as the
    /// drivers' own pools get theirs back.
    /// </summary>
    private async ValueTask<SlotWait> WaitForSlotAsync(bool async, long started, KeepAliveConnection handle, System.Transactions.Transaction? ambient, CancellationToken cancellationToken)
    {
        if (_slots.Wait(0, CancellationToken.None))
            return SlotWait.Slot;
        Interlocked.Increment(ref _pending);
        try
        {
            while (true)
            {
                RequestSweep();

                // A sweep may give back a dropped handle's connection enlisted in the caller's own transaction: it is the caller's.
                if (ambient is not null && TryReclaim(handle, ambient))
                    return SlotWait.Reclaimed;
                var left = _options.ConnectionTimeout - WaitedSince(started);
                if (left <= TimeSpan.Zero)
                    return SlotWait.TimedOut;
                var wait = Min(left, s_sweepRequestInterval);
                if (async ? await _slots.WaitAsync(wait, cancellationToken).ConfigureAwait(false) : _slots.Wait(wait, cancellationToken))
                    return SlotWait.Slot;
            }
        }
        finally
        {
            Interlocked.Decrement(ref _pending);
        }
    }

    /// <summary>How a wait for a slot ended.</summary>
    private enum SlotWait
    {
        /// <summary>The caller has a slot.</summary>
        Slot,

        /// <summary>The caller got a connection of its own transaction, in that connection's slot.</summary>
        Reclaimed,

        /// <summary>The connection timeout passed.</summary>
        TimedOut,
    }

    /// <summary>
    /// How long a caller has waited since <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp). Waits
    /// are measured on the real clock, as the semaphore and the driver wait: an injected clock (tests) moves only
    /// when told, and a wait measured on it would never end.
    /// </summary>
    private static TimeSpan WaitedSince(long started) =>
        TimeSpan.FromTicks((long)((Stopwatch.GetTimestamp() - started) * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency));

    private static async Task<bool> CompletesBeforeAsync(Task task, CancellationToken cancellationToken)
    {
        var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using (cancellationToken.Register(static s => ((TaskCompletionSource<bool>)s!).TrySetResult(true), cancelled))
            return await Task.WhenAny(task, cancelled.Task).ConfigureAwait(false) == task;
    }

    /// <summary>The caller cancelled while its connection was being opened or validated; the slot goes with the work.</summary>
    private sealed class CheckoutAbandonedException(CancellationToken token) : OperationCanceledException(token);

    /// <summary>What a checkout that its caller cancelled produced: a healthy connection goes idle; the slot comes free.</summary>
    private void Abandoned(Task<PooledConnection> work)
    {
        try
        {
            if (work.Status == TaskStatus.RanToCompletion)
                ToIdle(work.Result, newest: true);
            else
                _ = work.Exception; // Observed: the caller had gone; the pool logged what mattered.
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// Takes idle connections, newest first, until one is fit to hand out; opens a new one when none
    /// is. Each one's socket is checked (no round trip); one past the bypass window is also pinged.
    /// Validation spends at most one validation timeout per checkout: after that the caller gets a new
    /// connection rather than another ping (a blackholed path would time out every one).
    /// </summary>
    private async ValueTask<PooledConnection> TakeHealthyAsync(bool async, long started)
    {
        while (true)
        {
            if (await TakeIdleHealthyAsync(async).ConfigureAwait(false) is { } idle)
                return idle;
            if (await OpenOrWaitAsync(async, started).ConfigureAwait(false) is { } opened)
                return opened;
        }
    }

    /// <summary>The newest idle connection fit to hand out, or null when none is (or the validation budget ran out).</summary>
    private async ValueTask<PooledConnection?> TakeIdleHealthyAsync(bool async)
    {
        var budget = _options.ValidationTimeout;
        while (_registry.TakeNewestIdle() is { } pooled)
        {
            var generation = Volatile.Read(ref _generation);
            var now = Now;
            if (FailsFreeChecks(pooled, now))
                continue;

            if (!NeedsValidation(pooled, now, generation, Facts.BypassWindow))
                return pooled;
            if (budget <= TimeSpan.Zero)
            {
                ToIdle(pooled, newest: false);
                return null;
            }

            var pingStarted = _time.GetTimestamp();
            var outcome = await PingAsync(pooled, budget, async).ConfigureAwait(false);
            budget -= _time.GetElapsedTime(pingStarted);
            if (RecordValidation(pooled, outcome, generation))
                return pooled;

            var idleFor = now - pooled.LastAlive;
            if (outcome == PingOutcome.Unfit)
            {
                CloseOnUnfitHost(pooled);
                continue;
            }

            if (outcome == PingOutcome.Timeout)
            {
                Close(pooled, Eviction.ValidationTimedOut(pooled, _options.ValidationTimeout, idleFor));
                return null;
            }

            Close(pooled, Eviction.ValidationFailed(pooled, idleFor));
        }

        return null;
    }

    /// <summary>
    /// The checks that cost no round trip: past its lifetime, closed by the far end (its socket), or on
    /// a host that was left or that a failback moves away from. Closes a connection that fails one.
    /// </summary>
    private bool FailsFreeChecks(PooledConnection pooled, TimeSpan now)
    {
        if (pooled.IsExpired(now))
        {
            Close(pooled, Eviction.MaxLifetime(pooled, now));
            return true;
        }

        if (CheckSocket(pooled) is { } closed)
        {
            Close(pooled, Eviction.SocketClosed(pooled, closed, $" after {PoolSettings.Show(now - pooled.LastAlive)} idle"));
            return true;
        }

        if (_hosts.Verdict(pooled.Host, pooled.HostGeneration) is { } verdict)
        {
            Close(pooled, Eviction.FromVerdict(verdict));
            return true;
        }

        return false;
    }

    /// <summary>Hands a connection that was opened or checked for a caller to that caller's handle.</summary>
    private void ToLeased(PooledConnection pooled, KeepAliveConnection handle)
    {
        if (_registry.ToLeased(pooled))
        {
            pooled.LeasedAt = Now;
            pooled.LeakReported = false;
            pooled.ReportedFailure = null;
            pooled.SessionChanged = false;
            pooled.Enlisted = null;
            handle.Attach(pooled);
            return;
        }

        Close(pooled, Eviction.PoolDisposed("the pool was disposed while it was being checked out"));
        ThrowIfDisposed();
    }

    /// <summary>The one way back to the idle list; a disposed pool refuses and closes the connection.</summary>
    private void ToIdle(PooledConnection pooled, bool newest)
    {
        if (!_registry.ToIdle(pooled, newest))
            Close(pooled, Eviction.PoolDisposed("the pool was disposed"));
    }
}
