using System;

namespace NHKeepAlive;

/// <summary>A snapshot of a pool's state and counters.</summary>
public sealed class PoolStatistics
{
    internal PoolStatistics(int active, int idle, int opening, int checking, int pending, int maxPoolSize, int generation, ServerFacts facts, PoolCounters counters, System.Collections.Generic.IReadOnlyList<HostHealth> hosts, DriverCapabilities? capabilities = null)
    {
        Capabilities = capabilities;
        Hosts = hosts;
        Active = active;
        Idle = idle;
        Opening = opening;
        Checking = checking;
        Pending = pending;
        MaxPoolSize = maxPoolSize;
        Generation = generation;
        KeepAliveInterval = facts.KeepAliveInterval;
        ServerWaitTimeout = facts.WaitTimeout;
        Created = counters.Created;
        Evicted = counters.Evicted;
        Validations = counters.Validations;
        ValidationFailures = counters.ValidationFailures;
        SocketCheckFailures = counters.SocketCheckFailures;
        KeepAlivePings = counters.KeepAlivePings;
        Reopened = counters.Reopened;
        Timeouts = counters.Timeouts;
        SessionResets = counters.SessionResets;
        Recovered = counters.Recovered;
        StartedAgain = counters.StartedAgain;
        RefusedConnects = counters.RefusedConnects;
        var evictions = new System.Collections.Generic.Dictionary<EvictionReason, long>();
#pragma warning disable CA2263 // netstandard2.0 has no generic Enum.GetValues.
        foreach (EvictionReason reason in Enum.GetValues(typeof(EvictionReason)))
#pragma warning restore CA2263
            evictions[reason] = counters.EvictedFor(reason);
        Evictions = evictions;
    }

    /// <summary>Connections on loan to callers.</summary>
    public int Active { get; }

    /// <summary>Open connections waiting in the pool.</summary>
    public int Idle { get; }

    /// <summary>Connects in flight: connections being opened, until the server has accepted them.</summary>
    public int Opening { get; }

    /// <summary>Connections out of the idle list for a moment (validated on checkout, pinged by the keepalive, cleaned after a return), or just opened and on their way to a caller.</summary>
    public int Checking { get; }

    /// <summary>Every physical connection the pool has open or is opening: what the server's process list shows for the pool.</summary>
    public int Total => Active + Idle + Opening + Checking;

    /// <summary>Callers waiting for a connection.</summary>
    public int Pending { get; }

    /// <summary>The pool's maximum size.</summary>
    public int MaxPoolSize { get; }

    /// <summary>Advances at each disconnect; idle connections from an older generation are validated before reuse.</summary>
    public int Generation { get; }

    /// <summary>The keepalive interval in force (null while it is off).</summary>
    public TimeSpan? KeepAliveInterval { get; }

    /// <summary>The server's session <c>wait_timeout</c> as read at connect (null before the first connection or if it could not be read).</summary>
    public TimeSpan? ServerWaitTimeout { get; }

    /// <summary>Physical connections opened since the pool started (reopens in place included).</summary>
    public long Created { get; }

    /// <summary>Physical connections the pool closed since it started.</summary>
    public long Evicted { get; }

    /// <summary>Physical connections the pool closed since it started, by reason (every reason present, zero or not).</summary>
    public System.Collections.Generic.IReadOnlyDictionary<EvictionReason, long> Evictions { get; }

    /// <summary>Checkout (and held-connection) validations sent: pings, or the validation query.</summary>
    public long Validations { get; }

    /// <summary>Validations that found a dead connection or timed out.</summary>
    public long ValidationFailures { get; }

    /// <summary>Dead connections found by the socket check, without a round trip (on checkout, before a held connection's command, or in the keepalive sweep).</summary>
    public long SocketCheckFailures { get; }

    /// <summary>Keepalive pings sent.</summary>
    public long KeepAlivePings { get; }

    /// <summary>Held connections found dead and reopened in place (<see cref="KeepAlivePool.EnsureAlive"/>).</summary>
    public long Reopened { get; }

    /// <summary>Callers that gave up waiting for a connection (<see cref="PoolTimeoutException"/>).</summary>
    public long Timeouts { get; }

    /// <summary>The host list and each host's health (one entry for a single server).</summary>
    public System.Collections.Generic.IReadOnlyList<HostHealth> Hosts { get; }

    /// <summary>Returned connections whose session was reset for the next caller.</summary>
    public long SessionResets { get; }

    /// <summary>Connections taken back after the application dropped their handle without giving it back (found once the garbage collector collected the handle).</summary>
    public long Recovered { get; }

    /// <summary>Transactions that met a dead connection as they began (a close that raced the checkout) and began again on a live one.</summary>
    public long StartedAgain { get; }

    /// <summary>Connects the server refused for a connection limit (1040, 1203, 1226): while it does, callers wait for a connection to come back.</summary>
    public long RefusedConnects { get; }

    /// <summary>What the driver offered the pool (found when the first connection opened; null before).</summary>
    public DriverCapabilities? Capabilities { get; }

    /// <summary>The state in one line, as error messages show it.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => $"active {Active}, idle {Idle}, opening {Opening}, checking {Checking}, pending {Pending}, max {MaxPoolSize}";
}
