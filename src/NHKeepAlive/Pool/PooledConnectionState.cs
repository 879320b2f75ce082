namespace NHKeepAlive;

/// <summary>
/// Where one physical connection is in its life. Every connection the pool opens is in exactly one of
/// these at every moment; the pool changes it in one place, under its lock.
/// </summary>
internal enum PooledConnectionState
{
    /// <summary>Being opened (or reopened in place): not yet usable, already counted.</summary>
    Opening,

    /// <summary>In the idle list, waiting for a caller.</summary>
    Idle,

    /// <summary>On loan to a caller.</summary>
    Leased,

    /// <summary>Out of the idle list for a check (validation on checkout, a keepalive ping, the cleanup of a return), or just opened and on its way to its caller or the idle list.</summary>
    Checking,

    /// <summary>Being closed: out of every list, its socket about to go.</summary>
    Closing,

    /// <summary>Closed, once; the pool has forgotten it.</summary>
    Closed,
}
