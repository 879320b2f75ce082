namespace NHKeepAlive;

/// <summary>Why the pool closed a physical connection; the metric tag, with a readable detail in the log.</summary>
public enum EvictionReason
{
    /// <summary>It reached its max lifetime (less jitter).</summary>
    MaxLifetime,

    /// <summary>It stayed idle past the idle timeout while more than the minimum were idle.</summary>
    IdleTimeout,

    /// <summary>Validation on checkout found it dead.</summary>
    ValidationFailed,

    /// <summary>Validation did not answer within the validation timeout (a blackholed or hung socket).</summary>
    ValidationTimedOut,

    /// <summary>Its socket showed, without a round trip, that the far end had closed it (KILL, wait_timeout, a restart, a proxy's reset) or sent bytes nobody asked for.</summary>
    SocketClosed,

    /// <summary>A keepalive ping found it dead or timed out.</summary>
    KeepAliveFailed,

    /// <summary>It came back closed or broken: the driver closes a connection after a fatal error.</summary>
    Broken,

    /// <summary>The caller reported an error that means the connection is gone.</summary>
    Disconnected,

    /// <summary>It came back with a transaction or reader that could not be cleaned up.</summary>
    CleanupFailed,

    /// <summary>Its host was found unfit (refusing queries, not synced, read-only) or the caller met a node error on it.</summary>
    HostUnhealthy,

    /// <summary>A host before its own in the host list is healthy again: the pool fails back as connections retire.</summary>
    Failback,

    /// <summary>The pool was disposed.</summary>
    PoolDisposed,

    /// <summary>The application cleared the pool (<see cref="KeepAlivePool.Clear"/>).</summary>
    Cleared,
}
