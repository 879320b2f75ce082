using System;
using System.Threading;

namespace NHKeepAlive;

/// <summary>The deadline of one validation: aborts the socket after the server has been silent for the timeout.</summary>
internal sealed class ValidationWatch : IDisposable
{
    private readonly Action<PooledConnection> _abort;
    private readonly PooledConnection _pooled;
    private readonly TimeSpan _timeout;
    private readonly ITimer _timer;
    private readonly CancellationTokenRegistration _shutdown;
    private int _state; // 0 running, 1 finished, 2 aborted

    public ValidationWatch(TimeProvider time, PooledConnection pooled, TimeSpan timeout, Action<PooledConnection> abort, CancellationToken shutdown)
    {
        _abort = abort;
        _pooled = pooled;
        _timeout = timeout;
        _timer = time.CreateTimer(static s => ((ValidationWatch)s!).OnDeadline(), this, timeout, Timeout.InfiniteTimeSpan);
        _shutdown = shutdown.Register(static s => ((ValidationWatch)s!).Abort(), this);
    }

    /// <summary>Ends the watch; false if the deadline (or the shutdown) aborted the connection first.</summary>
    public bool Finish() => Interlocked.CompareExchange(ref _state, 1, 0) == 0;

    public void Dispose()
    {
        _timer.Dispose();
        _shutdown.Dispose();
    }

    private void OnDeadline()
    {
        if (Volatile.Read(ref _state) != 0)
            return;
        if (_pooled.CheckSocket() == SocketCheck.UnexpectedData)
        {
            // The server has answered; the reply waits for a thread to read it (a starved thread
            // pool). That is not the server's silence: give it another period.
            try
            {
                _timer.Change(_timeout, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
            }

            return;
        }

        Abort();
    }

    private void Abort()
    {
        if (Interlocked.CompareExchange(ref _state, 2, 0) == 0)
            _abort(_pooled);
    }
}
