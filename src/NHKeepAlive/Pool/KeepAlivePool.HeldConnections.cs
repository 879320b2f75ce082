using System;
using System.Data;
using System.Data.Common;
using System.Threading;
using NHKeepAlive.Diagnostics;

namespace NHKeepAlive;

/// <content>Connections a caller holds for a long time: checked before each command and transaction, reopened in place when dead.</content>
public sealed partial class KeepAlivePool
{
    /// <summary>
    /// Protects a connection that a caller holds for a long time (an NHibernate session with
    /// <c>connection.release_mode=on_close</c>, say): call it before each command and before beginning
    /// a transaction. Its socket is checked first (no round trip); one seen alive within the bypass
    /// window costs nothing more; an older one is pinged (bounded by the validation timeout). A dead one
    /// is reopened in place, on the same object, so the caller's next command runs. A reopen loses the
    /// session's server-side state: session variables, temporary tables, user locks, prepared
    /// statements, <c>LAST_INSERT_ID()</c>, and a database chosen with <c>USE</c>. Where the driver keeps
    /// the server's status flags (MySql.Data), a session change reported by the previous statement is
    /// also noted here, so that the return resets the session (<see cref="SessionResetPolicy.Auto"/>).
    /// </summary>
    /// <param name="connection">A connection this pool handed out and the caller still holds.</param>
    /// <param name="inTransaction">Whether the caller has a transaction open on it.</param>
    /// <returns>True if the connection had to be reopened.</returns>
    /// <exception cref="ConnectionLostException">The connection is dead and a transaction was open on it: it is not reopened.</exception>
    /// <exception cref="ConnectException">The connection is dead and could not be reopened.</exception>
    /// <exception cref="InvalidOperationException">The connection is not on loan from this pool.</exception>
    public bool EnsureAlive(DbConnection connection, bool inTransaction)
    {
        if (connection is null)
            throw new ArgumentNullException(nameof(connection));
        var handle = HandleOf(connection);
        var pooled = handle.Pooled;
        if (pooled is null || pooled.State != PooledConnectionState.Leased)
            throw handle.NotOpen();
        connection = pooled.Connection;
        var generation = Volatile.Read(ref _generation);

        var now = Now;
        var idle = now - pooled.LastAlive;

        // Before each command the driver still holds the status flags of the previous reply: a session
        // change it reports is remembered for the return (the flags themselves last one reply only).
        if (_options.SessionReset == SessionResetPolicy.Auto && !pooled.SessionChanged && _driver.SessionMayHaveChanged(connection) == true)
            pooled.SessionChanged = true;
        string why;
        var reason = EvictionReason.Broken;
        if (connection.State != ConnectionState.Open)
        {
            why = "found closed";
        }
        else if (CheckSocket(pooled) is { } closed)
        {
            why = closed;
            reason = EvictionReason.SocketClosed;
        }
        else if (!NeedsValidation(pooled, now, generation, Facts.BypassWindow))
        {
            pooled.LastAlive = now;
            return false;
        }
        else
        {
#pragma warning disable CA2012 // Synchronous: the ValueTask has completed.
            var outcome = PingAsync(pooled, _options.ValidationTimeout, async: false).GetAwaiter().GetResult();
#pragma warning restore CA2012
            if (RecordValidation(pooled, outcome, generation))
                return false;
            why = outcome switch
            {
                PingOutcome.Timeout => "no answer to validation",
                PingOutcome.Unfit => $"on an unfit host ({pooled.Unfit})",
                _ => "found dead",
            };
            reason = outcome switch
            {
                PingOutcome.Timeout => EvictionReason.ValidationTimedOut,
                PingOutcome.Unfit => EvictionReason.HostUnhealthy,
                _ => EvictionReason.ValidationFailed,
            };
            if (outcome == PingOutcome.Unfit)
                LeaveHost(pooled.Host, pooled.Unfit!);
        }

        AdvanceGeneration($"held connection {pooled.Id} was {why} after {PoolSettings.Show(idle)} idle");
        if (inTransaction || _driver.IsInTransaction(connection) == true)
        {
            // Close the dead connection, so that whatever the caller does next with it (a rollback on
            // dispose, say) fails at once as on any closed connection, instead of writing to a dead socket.
            CloseQuietly(pooled);
            throw new ConnectionLostException(
                $"The connection (pool '{Name}', connection {pooled.Id}) died after {PoolSettings.Show(idle)} idle while a transaction was open on it. " +
                "The server rolled the transaction back: nothing of it was committed, and it was not reopened, as that would silently drop the transaction's earlier statements. Begin a new transaction and run it again.");
        }

        Reopen(pooled, reason, why, idle);
        return true;
    }
}
