using System;

namespace NHKeepAlive;

/// <summary>A snapshot of a pool's state and counters.</summary>
public sealed class PoolStatistics
{
    internal PoolStatistics(int active, int idle, int pending, int maxPoolSize, int generation, TimeSpan? keepAliveInterval, TimeSpan? serverWaitTimeout, long created, long evicted, long validations, long validationFailures, long keepAlivePings)
    {
        Active = active;
        Idle = idle;
        Pending = pending;
        MaxPoolSize = maxPoolSize;
        Generation = generation;
        KeepAliveInterval = keepAliveInterval;
        ServerWaitTimeout = serverWaitTimeout;
        Created = created;
        Evicted = evicted;
        Validations = validations;
        ValidationFailures = validationFailures;
        KeepAlivePings = keepAlivePings;
    }

    /// <summary>Connections held by callers.</summary>
    public int Active { get; }

    /// <summary>Open connections waiting in the pool.</summary>
    public int Idle { get; }

    /// <summary>Connections held by callers or waiting in the pool: <see cref="Active"/> + <see cref="Idle"/> (one out for a keepalive ping or being opened is in neither, for that moment).</summary>
    public int Total => Active + Idle;

    /// <summary>Callers waiting for a connection.</summary>
    public int Pending { get; }

    /// <summary>The pool's maximum size.</summary>
    public int MaxPoolSize { get; }

    /// <summary>Advances at each disconnect; idle connections from an older generation are validated before reuse.</summary>
    public int Generation { get; }

    /// <summary>The keepalive interval in force (null while it is off or before the first connection).</summary>
    public TimeSpan? KeepAliveInterval { get; }

    /// <summary>The server's session <c>wait_timeout</c> as read at connect (null before the first connection or if it could not be read).</summary>
    public TimeSpan? ServerWaitTimeout { get; }

    /// <summary>Physical connections opened since the pool started.</summary>
    public long Created { get; }

    /// <summary>Physical connections the pool closed since it started.</summary>
    public long Evicted { get; }

    /// <summary>Checkout validations sent.</summary>
    public long Validations { get; }

    /// <summary>Checkout validations that found a dead connection or timed out.</summary>
    public long ValidationFailures { get; }

    /// <summary>Keepalive pings sent.</summary>
    public long KeepAlivePings { get; }

    /// <summary>Held connections found dead and reopened in place (<see cref="KeepAlivePool.EnsureAlive"/>).</summary>
    public long Reopened { get; init; }

    /// <summary>The state in one line, as error messages show it.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => $"active {Active}, idle {Idle}, pending {Pending}, max {MaxPoolSize}";
}
