using System;
using System.Threading;

namespace NHKeepAlive;

/// <summary>
/// The pool's counters, kept once: <see cref="KeepAlivePool.GetStatistics"/> and the meter both read
/// them. Only incremented, with <see cref="Interlocked"/>.
/// </summary>
internal sealed class PoolCounters
{
#pragma warning disable CA2263 // netstandard2.0 has no generic Enum.GetValues.
    private static readonly int s_reasons = Enum.GetValues(typeof(EvictionReason)).Length;
#pragma warning restore CA2263
    private readonly long[] _evictions = new long[s_reasons];
    private long _created;
    private long _validations;
    private long _validationFailures;
    private long _socketCheckFailures;
    private long _keepAlivePings;
    private long _keepAliveFailures;
    private long _reopened;
    private long _timeouts;
    private long _sessionResets;
    private long _recovered;
    private long _startedAgain;
    private long _refusedConnects;

    public long Created => Interlocked.Read(ref _created);

    public long Validations => Interlocked.Read(ref _validations);

    public long ValidationFailures => Interlocked.Read(ref _validationFailures);

    public long SocketCheckFailures => Interlocked.Read(ref _socketCheckFailures);

    public long KeepAlivePings => Interlocked.Read(ref _keepAlivePings);

    public long KeepAliveFailures => Interlocked.Read(ref _keepAliveFailures);

    public long Reopened => Interlocked.Read(ref _reopened);

    public long Timeouts => Interlocked.Read(ref _timeouts);

    public long SessionResets => Interlocked.Read(ref _sessionResets);

    public long Recovered => Interlocked.Read(ref _recovered);

    public long StartedAgain => Interlocked.Read(ref _startedAgain);

    public long RefusedConnects => Interlocked.Read(ref _refusedConnects);

    public long Evicted
    {
        get
        {
            long total = 0;
            for (var i = 0; i < _evictions.Length; i++)
                total += Interlocked.Read(ref _evictions[i]);
            return total;
        }
    }

    public long EvictedFor(EvictionReason reason) => Interlocked.Read(ref _evictions[(int)reason]);

    public void Create() => Interlocked.Increment(ref _created);

    public void Evict(EvictionReason reason) => Interlocked.Increment(ref _evictions[(int)reason]);

    public void Validate(bool ok)
    {
        Interlocked.Increment(ref _validations);
        if (!ok)
            Interlocked.Increment(ref _validationFailures);
    }

    public void SocketCheckFailed() => Interlocked.Increment(ref _socketCheckFailures);

    public void KeepAlivePing(bool ok)
    {
        Interlocked.Increment(ref _keepAlivePings);
        if (!ok)
            Interlocked.Increment(ref _keepAliveFailures);
    }

    public void Reopen() => Interlocked.Increment(ref _reopened);

    public void TimeOut() => Interlocked.Increment(ref _timeouts);

    public void SessionReset() => Interlocked.Increment(ref _sessionResets);

    public void Recover() => Interlocked.Increment(ref _recovered);

    public void StartAgain() => Interlocked.Increment(ref _startedAgain);

    public void RefuseConnect() => Interlocked.Increment(ref _refusedConnects);
}
