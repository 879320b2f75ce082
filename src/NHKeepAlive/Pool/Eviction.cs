using System;

namespace NHKeepAlive;

/// <summary>
/// Why one connection is closed, as one value: the reason (the metric tag), a readable detail (the log),
/// whether the failure makes the pool advance its generation (so that idle connections older than it are
/// validated before reuse), and whether its socket is aborted first (a dead socket must never make the
/// close wait). Built only by the named factories below, so that each reason's wording is said once.
/// </summary>
internal readonly struct Eviction
{
    private Eviction(EvictionReason reason, string detail, string? generationDetail = null, bool abortSocket = false)
    {
        Reason = reason;
        Detail = detail;
        GenerationDetail = generationDetail;
        AbortSocket = abortSocket;
    }

    public EvictionReason Reason { get; }

    public string Detail { get; }

    /// <summary>Set when the pool advances its generation for this failure: what the generation's log says.</summary>
    public string? GenerationDetail { get; }

    public bool AbortSocket { get; }

    public static Eviction MaxLifetime(PooledConnection pooled, TimeSpan now) =>
        new(EvictionReason.MaxLifetime, $"reached its max lifetime ({PoolSettings.Show(now - pooled.CreatedAt)} old)");

    public static Eviction IdleTimeout(PooledConnection pooled, TimeSpan now) =>
        new(EvictionReason.IdleTimeout, $"idle for {PoolSettings.Show(now - pooled.LastUsed)}");

    /// <summary>The socket check found it closed: <paramref name="closed"/> says how, <paramref name="where"/> who looked.</summary>
    public static Eviction SocketClosed(PooledConnection pooled, string closed, string where) =>
        new(EvictionReason.SocketClosed, $"{closed}{where}", $"connection {pooled.Id} was {closed}");

    public static Eviction ValidationTimedOut(PooledConnection pooled, TimeSpan timeout, TimeSpan idle) =>
        new(EvictionReason.ValidationTimedOut, $"no answer to validation within {PoolSettings.Show(timeout)} after {PoolSettings.Show(idle)} idle; the socket was aborted",
            $"connection {pooled.Id} timed out on validation", abortSocket: true);

    public static Eviction ValidationFailed(PooledConnection pooled, TimeSpan idle) =>
        new(EvictionReason.ValidationFailed, $"dead on validation after {PoolSettings.Show(idle)} idle", $"connection {pooled.Id} was found dead on checkout");

    public static Eviction KeepAliveTimedOut(PooledConnection pooled, TimeSpan timeout) =>
        new(EvictionReason.KeepAliveFailed, $"no answer to the keepalive ping within {PoolSettings.Show(timeout)}; the socket was aborted",
            $"connection {pooled.Id} failed its keepalive ping", abortSocket: true);

    public static Eviction KeepAliveFailed(PooledConnection pooled, TimeSpan idle) =>
        new(EvictionReason.KeepAliveFailed, $"dead on the keepalive ping after {PoolSettings.Show(idle)} idle", $"connection {pooled.Id} failed its keepalive ping", abortSocket: true);

    public static Eviction KeepAliveInterrupted() =>
        new(EvictionReason.KeepAliveFailed, "its keepalive ping was interrupted by an error in the pool", abortSocket: true);

    public static Eviction Disconnected(PooledConnection pooled, string disconnect) =>
        new(EvictionReason.Disconnected, disconnect, $"connection {pooled.Id}: {disconnect}");

    public static Eviction CameBackClosed(PooledConnection pooled, string state) =>
        new(EvictionReason.Broken, $"came back {state}: the driver closes a connection after a fatal error", $"connection {pooled.Id} came back {state}");

    public static Eviction CleanupFailed(string detail) => new(EvictionReason.CleanupFailed, detail);

    public static Eviction OpenFailed() => new(EvictionReason.CleanupFailed, "failed right after it opened");

    public static Eviction HostUnhealthy(string detail) => new(EvictionReason.HostUnhealthy, detail);

    /// <summary>A host's verdict (<see cref="ServerHostSet.Verdict"/>): left, or one a failback moves away from.</summary>
    public static Eviction FromVerdict((EvictionReason Reason, string Detail) verdict) => new(verdict.Reason, verdict.Detail);

    public static Eviction PoolDisposed(string detail, bool abortSocket = false) => new(EvictionReason.PoolDisposed, detail, abortSocket: abortSocket);

    public static Eviction Cleared() => new(EvictionReason.Cleared, "the pool was cleared");
}
