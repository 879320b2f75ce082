using System;
using System.Data;
using System.Data.Common;
using System.Threading.Tasks;
using NHKeepAlive.Diagnostics;

namespace NHKeepAlive;

/// <content>Returns: what makes a returned connection fit for the next caller, or why it must go.</content>
public sealed partial class KeepAlivePool
{
    /// <summary>Makes a returned connection fit for the next caller, or says why it must go.</summary>
    private (EvictionReason? Reason, string? Detail) CleanForReuse(PooledConnection pooled, Exception? failure)
    {
        var connection = pooled.Connection;
        if (failure is not null && DisconnectClassifier.Classify(failure) is { } disconnect)
        {
            AdvanceGeneration($"connection {pooled.Id}: {disconnect}");
            return (EvictionReason.Disconnected, disconnect);
        }

        if (NodeHealth.Classify(failure) is { } unfit)
        {
            LeaveHost(pooled.Host, unfit);
            return (EvictionReason.HostUnhealthy, $"the caller met a node error on {pooled.Host.Name}: {unfit}");
        }

        if (connection.State != ConnectionState.Open)
        {
            AdvanceGeneration($"connection {pooled.Id} came back {connection.State}");
            return (EvictionReason.Broken, $"came back {connection.State}: the driver closes a connection after a fatal error");
        }

        if (IsDisposed)
            return (EvictionReason.PoolDisposed, "returned after the pool was disposed");
        var now = Now;
        if (pooled.IsExpired(now))
            return (EvictionReason.MaxLifetime, LifetimeDetail(pooled, now));
        if (_hosts.Verdict(pooled.Host, pooled.HostGeneration) is { } verdict)
            return verdict;

        // Cleanup round trips (a rollback, a reset) are bounded like a validation: a blackholed socket
        // must not hold the returning caller, nor keep the connection out of the pool for good.
        ValidationWatchdog.Watch? watch = null;
        try
        {
            // The driver tells from its own state whether a transaction is open, so the common
            // case costs no round trip; when it cannot tell, roll back anyway.
            var inTransaction = _driver.IsInTransaction(connection);
            if (inTransaction != false)
            {
                watch = _watchdog.Start(pooled, _options.ValidationTimeout);
                _driver.RollBack(connection);
                if (inTransaction == true)
                    PoolLog.TransactionRolledBack(_logger, Name, pooled.Id, null);
            }

            if (ResetReason(pooled) is { } why)
            {
                watch ??= _watchdog.Start(pooled, _options.ValidationTimeout);
                if (!_driver.ResetSession(connection, pooled.SessionRestore))
                    return (EvictionReason.CleanupFailed, $"its session had to be reset ({why}) and {_driver.Name} offers no reset");
                Counted(pooled, why);
            }

            RestoreDatabase(pooled);
        }
        catch (Exception e) when (NodeHealth.Classify(e) is { } nodeError)
        {
            // A rollback or reset that meets a node error (1047 after a failed commit, say): leave the node too.
            LeaveHost(pooled.Host, nodeError);
            return (EvictionReason.HostUnhealthy, $"its cleanup met a node error on {pooled.Host.Name}: {nodeError}");
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or System.IO.IOException or System.Net.Sockets.SocketException)
        {
            return (EvictionReason.CleanupFailed, $"could not roll back or reset its session for the next caller: {_settings.Redact(e.Message)}");
        }
        finally
        {
            if (watch is not null && !_watchdog.Finish(watch))
                AdvanceGeneration($"connection {pooled.Id} did not answer its cleanup");
        }

        return (null, null);
    }

    private void Counted(PooledConnection pooled, string why)
    {
        _counters.SessionReset();
        PoolLog.SessionReset(_logger, Name, pooled.Id, why, null);
    }

    /// <summary>Changes the database back to the one the connection opened on, if the caller changed it (a reset keeps it on MySqlConnector).</summary>
    private static void RestoreDatabase(PooledConnection pooled)
    {
        if (pooled.Database is { Length: > 0 } database && !string.Equals(pooled.Connection.Database, database, StringComparison.Ordinal))
            pooled.Connection.ChangeDatabase(database);
    }

    /// <summary>Why a returned connection's session must be reset before the next caller (<see cref="KeepAliveOptions.SessionReset"/>), or null.</summary>
    private string? ResetReason(PooledConnection pooled)
    {
        switch (_options.SessionReset)
        {
            case SessionResetPolicy.Never:
                return null;
            case SessionResetPolicy.Always:
                return "the policy is always";
        }

        // Asked first, always: the driver's record of changes is cleared by the asking.
        var changed = _driver.SessionMayHaveChanged(pooled.Connection);
        if (pooled.Database is { Length: > 0 } database && !string.Equals(pooled.Connection.Database, database, StringComparison.Ordinal))
            return "the caller changed the database";
        if (pooled.SessionChanged)
            return "the server reported a session change earlier in the loan";
        return changed switch
        {
            true => "a statement changed the session, or may have",
            false when pooled.ChangesReported => null,
            false => "the server does not report session changes on this connection",
            null => $"{_driver.Name} keeps no record of session changes",
        };
    }
}
