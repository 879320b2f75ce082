using System;
using System.Collections.Generic;
using System.Threading;

namespace NHKeepAlive;

/// <summary>
/// The deadlines of a pool's validations in flight (checkout validations, keepalive pings, held-connection
/// checks), kept by one timer per pool: a timer per validation would wake a timer thread and the thread
/// pool for each one. A validation whose server stays silent past its timeout has its socket aborted,
/// which ends a ping that a blackholed path would otherwise hold for minutes; one whose reply has arrived
/// but waits for a thread to read it (a starved thread pool) is given another period, as that is not the
/// server's silence.
/// </summary>
internal sealed class ValidationWatchdog : IDisposable
{
    private readonly object _lock = new();
    private readonly List<Watch> _active = [];
    private readonly TimeProvider _time;
    private readonly Action<PooledConnection> _abort;
    private readonly ITimer _timer;
    private TimeSpan? _armedFor;
    private bool _stopped;

    public ValidationWatchdog(TimeProvider time, Action<PooledConnection> abort)
    {
        _time = time;
        _start = time.GetTimestamp();
        _abort = abort;
        _timer = time.CreateTimer(static s => ((ValidationWatchdog)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    private readonly long _start;

    private TimeSpan Now => _time.GetElapsedTime(_start);

    /// <summary>Watches one validation of <paramref name="pooled"/> for <paramref name="timeout"/> of the server's silence.</summary>
    public Watch Start(PooledConnection pooled, TimeSpan timeout)
    {
        var watch = new Watch(pooled, timeout, Now + timeout);
        bool abortNow;
        lock (_lock)
        {
            abortNow = _stopped;
            if (!abortNow)
            {
                _active.Add(watch);
                if (_armedFor is not { } armed || watch.Deadline < armed)
                    Arm(watch.Deadline);
            }
        }

        if (abortNow)
            Abort(watch);
        return watch;
    }

    /// <summary>Ends a watch; false if its deadline (or the pool's shutdown) aborted the connection first.</summary>
    public bool Finish(Watch watch)
    {
        lock (_lock)
            _active.Remove(watch);
        return Interlocked.CompareExchange(ref watch.State, Watch.Finished, Watch.Running) == Watch.Running;
    }

    /// <summary>Aborts every validation in flight and any started later: the pool is shutting down.</summary>
    public void Stop()
    {
        Watch[] active;
        lock (_lock)
        {
            _stopped = true;
            active = [.. _active];
        }

        foreach (var watch in active)
            Abort(watch);
    }

    public void Dispose() => _timer.Dispose();

    private void Arm(TimeSpan deadline)
    {
        _armedFor = deadline;
        var due = deadline - Now;
        try
        {
            _timer.Change(due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void OnTimer()
    {
        var expired = new List<Watch>();
        lock (_lock)
        {
            _armedFor = null;
            var now = Now;
            TimeSpan? next = null;
            foreach (var watch in _active)
            {
                if (watch.State != Watch.Running)
                    continue;
                if (now >= watch.Deadline)
                {
                    if (watch.Pooled.CheckSocket() == SocketCheck.UnexpectedData)
                        watch.Deadline = now + watch.Timeout; // answered; the reply waits for a thread to read it
                    else
                    {
                        expired.Add(watch);
                        continue;
                    }
                }

                next = next is { } n && n < watch.Deadline ? n : watch.Deadline;
            }

            if (next is { } deadline && !_stopped)
                Arm(deadline);
        }

        foreach (var watch in expired)
            Abort(watch);
    }

    private void Abort(Watch watch)
    {
        if (Interlocked.CompareExchange(ref watch.State, Watch.Aborted, Watch.Running) == Watch.Running)
            _abort(watch.Pooled);
    }

    /// <summary>One validation in flight.</summary>
    internal sealed class Watch(PooledConnection pooled, TimeSpan timeout, TimeSpan deadline)
    {
        public const int Running = 0;
        public const int Finished = 1;
        public const int Aborted = 2;

#pragma warning disable SA1401, CA1051 // Interlocked needs the field itself.
        public int State;
#pragma warning restore SA1401, CA1051

        public PooledConnection Pooled { get; } = pooled;

        public TimeSpan Timeout { get; } = timeout;

        public TimeSpan Deadline { get; set; } = deadline;
    }
}
