using System;
using System.Data.Common;
using System.Net.Sockets;
using System.Threading;

namespace NHKeepAlive;

/// <summary>
/// One physical connection and what the pool knows of it, with the work done on it alone (the
/// socket check). Its <see cref="State"/> is changed only by the pool, under the pool's lock; the
/// other fields by the one party that has it out of the idle list.
/// </summary>
internal sealed class PooledConnection
{
    // One weak reference for the connection's whole life, pointed at each loan's handle in turn.
    private readonly WeakReference<KeepAliveConnection> _holder = new(null!);
    private int _heldLease = -1;

    public PooledConnection(int id, DbConnection connection, ServerHost host, TimeSpan now)
    {
        Id = id;
        Connection = connection;
        Host = host;
        HostGeneration = host.Generation;
        CreatedAt = now;
        LastUsed = now;
        LastAlive = now;
    }

    /// <summary>The pool's own number for it, as logs show it.</summary>
    public int Id { get; }

    /// <summary>The server it is connected to (a held connection reopened in place may move).</summary>
    public ServerHost Host { get; set; }

    /// <summary>Its host's generation when it opened: a host left since makes it unfit.</summary>
    public int HostGeneration { get; set; }

    public DbConnection Connection { get; }

    /// <summary>Where it is in its life; set only by the pool's one transition method.</summary>
    public PooledConnectionState State { get; set; } = PooledConnectionState.Opening;

    public int? ServerThreadId { get; private set; }

    /// <summary>The TCP socket under the driver, found once when it opened; null where there is none to find.</summary>
    public Socket? Socket { get; private set; }

    /// <summary>Whether the pool may ping it on the wire itself (<see cref="WirePing"/>): a socket found, and the plain protocol on it.</summary>
    public bool WirePingable { get; private set; }

    public TimeSpan CreatedAt { get; private set; }

    /// <summary>When it retires (max lifetime less jitter); null when there is no max lifetime.</summary>
    public TimeSpan? ExpiresAt { get; private set; }

    /// <summary>The pool generation it was created in, or last validated in.</summary>
    public int Generation { get; set; }

    /// <summary>When a caller last returned it (what the idle timeout measures).</summary>
    public TimeSpan LastUsed { get; set; }

    /// <summary>When it was last seen alive: returned open, or answered a ping (what the bypass window and keepalive measure).</summary>
    public TimeSpan LastAlive { get; set; }

    public TimeSpan LeasedAt { get; set; }

    /// <summary>The stack of the code that took it, when leak detection is on.</summary>
    public string? LeaseStack { get; set; }

    public bool LeakReported { get; set; }

    /// <summary>Whether a reply earlier in this loan reported a session change (seen before a held connection's command).</summary>
    public bool SessionChanged { get; set; }

    /// <summary>An error its holder met and reported (<see cref="KeepAlivePool.ReportFailure"/>), judged when it comes back.</summary>
    public Exception? ReportedFailure { get; set; }

    /// <summary>The database it was opened on, to restore it if a caller changed it.</summary>
    public string? Database { get; set; }

    /// <summary>Whether the server reports session changes on it (what <see cref="SessionResetPolicy.Auto"/> relies on to skip a reset).</summary>
    public bool ChangesReported { get; set; } = true;

    /// <summary>Why its node was found unfit by the last validation (with a host list).</summary>
    public string? Unfit { get; set; }

    /// <summary>What restores, after a session reset, what the driver set when it opened (null: a reset keeps it).</summary>
    public string? SessionRestore { get; set; }

    /// <summary>The pool's part in the system transaction (TransactionScope) its holder enlisted it in during this loan, if any: it is not reused before that transaction's outcome has reached the driver.</summary>
    public TransactionEnlistment? Enlisted { get; set; }

    /// <summary>The number of its current (or last) loan; a handle holds the number of its own, so a stale handle is told apart.</summary>
    public int LeaseId { get; set; }

    /// <summary>
    /// Whether the handle of its current loan has been collected by the garbage collector without being
    /// given back (the application dropped it). False while the handle lives, and while a new loan's handle
    /// is being attached.
    /// </summary>
    public bool HolderDropped(int leaseId) =>
        Volatile.Read(ref _heldLease) == leaseId && !_holder.TryGetTarget(out _);

    /// <summary>Records the handle of the current loan, weakly: the pool must not keep a dropped handle alive.</summary>
    public void Hold(KeepAliveConnection handle)
    {
        _holder.SetTarget(handle);
        Volatile.Write(ref _heldLease, LeaseId);
    }

    public bool IsExpired(TimeSpan now) => ExpiresAt is { } expiry && now >= expiry;

    /// <summary>Records that the object now stands for a newly opened physical connection (first open, or a reopen in place).</summary>
    public void Opened(TimeSpan now, TimeSpan? expiresAt, int generation, int? serverThreadId, Socket? socket, bool plainProtocol, string? database)
    {
        WirePingable = socket is not null && plainProtocol;
        CreatedAt = now;
        ExpiresAt = expiresAt;
        Generation = generation;
        ServerThreadId = serverThreadId;
        Socket = socket;
        Database = database;
        LastAlive = now;
        LastUsed = now;
    }

    /// <summary>
    /// Looks at the socket without a round trip and without consuming anything. An idle connection's
    /// socket must have nothing to read: readable means the far end closed it (FIN or RST: KILL,
    /// wait_timeout, a restart, a proxy) or sent something unasked (an error packet before closing),
    /// and either way the connection is unfit to hand out.
    /// </summary>
    public SocketCheck CheckSocket()
    {
        var socket = Socket;
        if (socket is null)
            return SocketCheck.Unknown;
        try
        {
            if (!socket.Poll(0, SelectMode.SelectRead))
                return SocketCheck.Open;
            return socket.Available > 0 ? SocketCheck.UnexpectedData : SocketCheck.Closed;
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException)
        {
            return SocketCheck.Closed;
        }
    }
}

/// <summary>What a look at an idle connection's socket found.</summary>
internal enum SocketCheck
{
    /// <summary>No socket to look at: the pool relies on pings.</summary>
    Unknown,

    /// <summary>Open, nothing to read: as a live idle connection should be.</summary>
    Open,

    /// <summary>Closed by the far end (or by the pool).</summary>
    Closed,

    /// <summary>Bytes nobody asked for are waiting: never valid on an idle connection.</summary>
    UnexpectedData,
}
