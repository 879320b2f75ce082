using System;
using System.Data.Common;

namespace NHKeepAlive;

/// <summary>One physical connection and what the pool knows of it. Mutated only under the pool's lock or by the one party that has it out of the idle list.</summary>
internal sealed class PooledConnection
{
    public PooledConnection(int id, DbConnection connection, TimeSpan createdAt, TimeSpan? expiresAt, int generation, int? serverThreadId)
    {
        Id = id;
        Connection = connection;
        CreatedAt = createdAt;
        ExpiresAt = expiresAt;
        Generation = generation;
        ServerThreadId = serverThreadId;
        LastUsed = createdAt;
        LastAlive = createdAt;
    }

    /// <summary>The pool's own number for it, as logs show it.</summary>
    public int Id { get; }

    public DbConnection Connection { get; }

    public int? ServerThreadId { get; private set; }

    public TimeSpan CreatedAt { get; private set; }

    /// <summary>When it retires (max lifetime less jitter); null when there is no max lifetime.</summary>
    public TimeSpan? ExpiresAt { get; private set; }

    /// <summary>The pool generation it was created in, or last validated in.</summary>
    public int Generation { get; set; }

    /// <summary>When a caller last returned it (what the idle timeout measures).</summary>
    public TimeSpan LastUsed { get; set; }

    /// <summary>When it was last seen alive: returned open, or answered a ping (what the bypass window and keepalive measure).</summary>
    public TimeSpan LastAlive { get; set; }

    /// <summary>Whether a caller holds it.</summary>
    public bool IsLeased { get; set; }

    public TimeSpan LeasedAt { get; set; }

    /// <summary>The stack of the code that took it, when leak detection is on.</summary>
    public string? LeaseStack { get; set; }

    public bool LeakReported { get; set; }

    /// <summary>The database it was opened on, to restore it if a caller changed it.</summary>
    public string? Database { get; set; }

    /// <summary>Records that the same object now stands for a new physical connection (a held connection reopened in place).</summary>
    public void Renew(TimeSpan now, TimeSpan? expiresAt, int generation, int? serverThreadId)
    {
        CreatedAt = now;
        ExpiresAt = expiresAt;
        Generation = generation;
        ServerThreadId = serverThreadId;
        LastAlive = now;
    }

    public bool IsExpired(TimeSpan now) => ExpiresAt is { } expiry && now >= expiry;
}
