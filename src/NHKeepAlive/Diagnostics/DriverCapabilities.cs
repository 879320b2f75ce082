using System.Collections.Generic;

namespace NHKeepAlive;

/// <summary>
/// What the running driver offered the pool, found by reflection when the pool's first connection opened: each
/// capability the pool binds to in the driver's insides, and whether it was there. A capability that is missing
/// makes the pool fall back safely (a ping instead of the socket check, a reset on every return instead of only
/// after a change), at some cost; <see cref="KeepAlivePool"/> logs the record once (<c>DriverCapabilities</c>)
/// and <see cref="PoolStatistics.Capabilities"/> shows it, so that a driver upgrade that breaks a binding is seen.
/// </summary>
public sealed class DriverCapabilities
{
    internal DriverCapabilities(string driver, string version, bool socket, bool wirePing, bool transactionState, bool statusFlags, bool sessionReset, bool statementWatch)
    {
        Driver = driver;
        Version = version;
        Socket = socket;
        WirePing = wirePing;
        TransactionState = transactionState;
        StatusFlags = statusFlags;
        SessionReset = sessionReset;
        StatementWatch = statementWatch;
    }

    /// <summary>MySql.Data or MySqlConnector.</summary>
    public string Driver { get; }

    /// <summary>The driver assembly's informational version (or assembly version).</summary>
    public string Version { get; }

    /// <summary>The TCP socket under a connection was found: the socket check and the socket abort work.</summary>
    public bool Socket { get; }

    /// <summary>The protocol on that socket is plain (no TLS, no compression): the pool pings on the wire itself.</summary>
    public bool WirePing { get; }

    /// <summary>The driver tells whether a transaction is open without a round trip (MySql.Data's status flags, MySqlConnector's current transaction).</summary>
    public bool TransactionState { get; }

    /// <summary>MySql.Data's record of the server's status flags (autocommit, session state changed); MySqlConnector keeps none.</summary>
    public bool StatusFlags { get; }

    /// <summary>A session reset the pool can call (MySqlConnector's ResetConnectionAsync, MySql.Data's COM_CHANGE_USER).</summary>
    public bool SessionReset { get; }

    /// <summary>The pool sees each statement (MySql.Data's command interceptor, MySqlConnector's activity source): a clean return costs no reset.</summary>
    public bool StatementWatch { get; }

    /// <summary>The capabilities missing, by name.</summary>
    public IReadOnlyList<string> Missing
    {
        get
        {
            var missing = new List<string>();
            if (!Socket)
                missing.Add(nameof(Socket));
            if (!WirePing)
                missing.Add(nameof(WirePing));
            if (!TransactionState)
                missing.Add(nameof(TransactionState));
            if (!StatusFlags)
                missing.Add(nameof(StatusFlags));
            if (!SessionReset)
                missing.Add(nameof(SessionReset));
            if (!StatementWatch)
                missing.Add(nameof(StatementWatch));
            return missing;
        }
    }

    /// <summary>The record in one line, as the log shows it.</summary>
    /// <returns>The line.</returns>
    public override string ToString() =>
        $"{Driver} {Version}: socket {Yes(Socket)}, wire ping {Yes(WirePing)}, transaction state {Yes(TransactionState)}, status flags {Yes(StatusFlags)}, session reset {Yes(SessionReset)}, statement watch {Yes(StatementWatch)}";

    private static string Yes(bool value) => value ? "yes" : "no";
}
