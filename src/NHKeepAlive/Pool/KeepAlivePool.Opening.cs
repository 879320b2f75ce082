using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Diagnostics;

namespace NHKeepAlive;

/// <content>
/// How many connects a pool makes at once, and what it does when the server is full: callers wait for a
/// connection to come back rather than fail, and the pool knocks on the full server a few times a second
/// at most.
/// </content>
public sealed partial class KeepAlivePool
{
    /// <summary>
    /// The most connects one pool has in flight. HikariCP opens from a single adder thread; two lets a
    /// connect that hangs on a dead path (bounded by the driver's connect timeout) not hold up every other
    /// caller, while a just-restarted or full server still sees a couple of handshakes from a pool, not one
    /// per waiting caller. On loopback a connect takes a few milliseconds, so 32 cold callers wait tens of
    /// milliseconds at most.
    /// </summary>
    internal const int MaxConnectsInFlight = 2;

    private static readonly TimeSpan s_firstRetry = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan s_lastRetry = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _connectGate = new(MaxConnectsInFlight, MaxConnectsInFlight);
    private readonly object _fullLock = new();
    private readonly LinkedList<TaskCompletionSource<PooledConnection?>> _waiters = new();
    private ServerFull? _full;

    /// <summary>What the pool knows while the server refuses new connections for a connection limit.</summary>
    private sealed class ServerFull(string words, int ceiling, TimeSpan now)
    {
        public string Words { get; } = words;

        /// <summary>The pool's live connections when the server refused: what the server holds for it now.</summary>
        public int Ceiling { get; } = ceiling;

        public TimeSpan Retry { get; set; } = s_firstRetry;

        public TimeSpan NextAttempt { get; set; } = now + s_firstRetry;

        /// <summary>Whether a caller is trying to connect now (one at a time while the server is full).</summary>
        public bool Trying { get; set; }
    }

    /// <summary>
    /// Opens a connection for a caller that found no idle one, within the connection timeout counted from
    /// <paramref name="started"/> (a <see cref="System.Diagnostics.Stopwatch"/> timestamp); null when the caller should look at the idle list again. While the server
    /// is full the caller waits for a connection another caller gives back (the longest waiter first), and
    /// only one caller at a time tries to connect, after a backoff that doubles from 50 ms to 1 s.
    /// </summary>
    private async ValueTask<PooledConnection?> OpenOrWaitAsync(bool async, long started)
    {
        var left = _options.ConnectionTimeout - WaitedSince(started);
        if (Volatile.Read(ref _full) is not { } full)
        {
            if (!(async ? await _connectGate.WaitAsync(Positive(left)).ConfigureAwait(false) : _connectGate.Wait(Positive(left))))
                throw TimeoutError();
            try
            {
                return await CreateAsync(async).ConfigureAwait(false);
            }
            catch (ServerFullException e)
            {
                Refused(e.Words);
                return null;
            }
            finally
            {
                _connectGate.Release();
            }
        }

        if (left <= TimeSpan.Zero)
            throw TimeoutError(full);
        var now = RealNow;
        bool attempt;
        lock (_fullLock)
        {
            attempt = !full.Trying && now >= full.NextAttempt;
            if (attempt)
                full.Trying = true;
        }

        if (attempt)
        {
            try
            {
                var pooled = await CreateAsync(async).ConfigureAwait(false);
                Lifted(full);
                return pooled;
            }
            catch (ServerFullException e)
            {
                Refused(e.Words);
                return null;
            }
            finally
            {
                lock (_fullLock)
                    full.Trying = false;
            }
        }

        return await WaitForHandOffAsync(async, Min(left, Max(full.NextAttempt - now, s_firstRetry))).ConfigureAwait(false);
    }

    /// <summary>Waits up to <paramref name="timeout"/> for a connection another caller gives back; null when none came.</summary>
    private async ValueTask<PooledConnection?> WaitForHandOffAsync(bool async, TimeSpan timeout)
    {
        var waiter = new TaskCompletionSource<PooledConnection?>(TaskCreationOptions.RunContinuationsAsynchronously);
        LinkedListNode<TaskCompletionSource<PooledConnection?>> node;
        lock (_fullLock)
            node = _waiters.AddLast(waiter);

        // A connection that went idle before this caller queued: the caller's next look at the idle list finds it.
        if (_registry.InState(PooledConnectionState.Idle) > 0)
            waiter.TrySetResult(null);

        if (async)
        {
            // The delay's timer is cancelled as soon as a connection comes, not left to run out for every waiter.
            using var timer = new CancellationTokenSource();
            var delay = Task.Delay(timeout, timer.Token);
            if (await Task.WhenAny(waiter.Task, delay).ConfigureAwait(false) != delay)
                timer.Cancel();
        }
        else
            waiter.Task.Wait(timeout);
        lock (_fullLock)
        {
            if (node.List is not null)
                _waiters.Remove(node);
        }

        if (waiter.TrySetResult(null))
            return null; // Nothing came in time.
        return waiter.Task.Result;
    }

    /// <summary>Gives a connection that came back straight to the longest waiter while the server is full; false when nobody waits.</summary>
    private bool HandOff(PooledConnection pooled)
    {
        if (Volatile.Read(ref _full) is null)
            return false;
        while (true)
        {
            TaskCompletionSource<PooledConnection?> waiter;
            lock (_fullLock)
            {
                if (_waiters.First is not { } first)
                    return false;
                waiter = first.Value;
                _waiters.RemoveFirst();
            }

            if (waiter.TrySetResult(pooled))
                return true;
        }
    }

    /// <summary>A connect was refused for a connection limit: the live count becomes the ceiling for now (logged once), and the next try backs off.</summary>
    private void Refused(string words)
    {
        _counters.RefuseConnect();
        var now = RealNow;
        lock (_fullLock)
        {
            if (_full is { } full)
            {
                full.Retry = Min(TimeSpan.FromTicks(full.Retry.Ticks * 2), s_lastRetry);
                full.NextAttempt = now + full.Retry;
                return;
            }

            _full = new ServerFull(_settings.Redact(words), _registry.Count, now);
        }

        PoolLog.ServerFull(_logger, Name, _settings.Redact(words), _registry.Count, _options.MaxPoolSize, null);
    }

    /// <summary>A connect succeeded while the server was full: the ceiling is lifted (logged once) and every waiter looks again.</summary>
    private void Lifted(ServerFull full)
    {
        List<TaskCompletionSource<PooledConnection?>> waiters;
        lock (_fullLock)
        {
            if (!ReferenceEquals(_full, full))
                return;
            _full = null;
            waiters = [.. _waiters];
            _waiters.Clear();
        }

        PoolLog.ServerFullLifted(_logger, Name, _registry.Count, null);
        foreach (var waiter in waiters)
            waiter.TrySetResult(null);
    }

    /// <summary>The real clock, for the backoff: callers wait on it (see <see cref="WaitedSince"/>).</summary>
    private static TimeSpan RealNow => WaitedSince(0);

    private static TimeSpan Positive(TimeSpan value) => value > TimeSpan.Zero ? value : TimeSpan.Zero;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>A connect the server refused for a connection limit; <see cref="Words"/> are the server's.</summary>
    private sealed class ServerFullException(string words, Exception inner) : Exception(words, inner)
    {
        public string Words { get; } = words;
    }
}
