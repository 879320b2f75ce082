using System;

namespace NHKeepAlive;

/// <summary>A caller waited the whole connection timeout and no connection came free; the message tells the pool's state.</summary>
public sealed class PoolTimeoutException : TimeoutException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public PoolTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a default message.</summary>
    public PoolTimeoutException()
        : base("Timed out waiting for a connection from the NHKeepAlive pool.")
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public PoolTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The pool's state when the caller gave up (null when not created by a pool).</summary>
    public PoolStatistics? Statistics { get; init; }
}
