using System;
using System.Data;
using System.Data.Common;
using NHKeepAlive.Diagnostics;

namespace NHKeepAlive;

/// <content>Returns: a handle given back or dropped, what makes its connection fit for the next caller, or why it must go.</content>
public sealed partial class KeepAlivePool
{
    /// <summary>
    /// Takes a handle's connection back: the handle lets go of it at once (every later use of the handle
    /// throws), then the connection is cleaned for the next caller or closed, and its slot comes free.
    /// </summary>
    /// <param name="handle">The handle.</param>
    /// <param name="failure">An error the caller met on it, if any.</param>
    /// <param name="final">Whether the handle is done for good (<see cref="Return(DbConnection, Exception)"/>, Dispose) or may be opened again (Close).</param>
    internal void GiveBack(KeepAliveConnection handle, Exception? failure, bool final)
    {
        var pooled = handle.Pooled;
        var leaseId = handle.LeaseId;
        handle.Detach(final);
        if (pooled is null || !_registry.TryEndLease(pooled, leaseId, PooledConnectionState.Checking))
        {
            if (pooled is not null && IsDisposed)
                return; // Closed by the pool's shutdown while on loan: nothing to give back.
            throw new InvalidOperationException(
                $"This connection is not out on loan from pool '{Name}': it was returned already.");
        }

        if (!AwaitsTransaction(pooled, failure))
            TakeBack(pooled, failure);
    }

    /// <summary>
    /// Connections given back while their system transaction goes on, by transaction: a handle opened inside
    /// the same transaction takes one of them back (<see cref="TryReclaim"/>) rather than a second connection,
    /// which MySql.Data refuses to enlist ("Multiple simultaneous connections") and MySqlConnector would
    /// enlist as a second XA branch. The drivers' own pools do the same.
    /// </summary>
    private readonly System.Collections.Generic.Dictionary<System.Transactions.Transaction, System.Collections.Generic.List<(PooledConnection Pooled, TransactionEnlistment Enlistment)>> _awaiting = [];

    /// <summary>
    /// Keeps a connection given back while the system transaction it is enlisted in is still going (out of the
    /// idle list, in its slot); it is taken back when the transaction's outcome reaches the pool's enlistment,
    /// after the driver's (<see cref="TransactionEnlistment"/>). False when there is nothing to wait for.
    /// </summary>
    private bool AwaitsTransaction(PooledConnection pooled, Exception? failure)
    {
        if (pooled.Enlisted is not { } enlistment)
            return false;
        pooled.Enlisted = null;

        // One the driver closed after a fatal error (a KILL) has no part left in the transaction's outcome, and
        // the outcome may never be announced (under Mono, MySql.Data's commit throws on the dead connection):
        // evict it now rather than hold its slot for good.
        if (pooled.Connection.State != ConnectionState.Open)
            return false;

        // Listed before the enlistment hears of the return, so that the outcome's take-back always finds it to remove.
        ListAwaiting(pooled, enlistment, add: true);
        if (enlistment.GivenBack(failure))
            return true;
        ListAwaiting(pooled, enlistment, add: false);
        return false;
    }

    private void ListAwaiting(PooledConnection pooled, TransactionEnlistment enlistment, bool add)
    {
        lock (_awaiting)
        {
            if (!_awaiting.TryGetValue(enlistment.Transaction, out var list))
            {
                if (!add)
                    return;
                list = [];
                _awaiting.Add(enlistment.Transaction, list);
            }

            if (add)
            {
                list.Add((pooled, enlistment));
                return;
            }

            list.RemoveAll(entry => ReferenceEquals(entry.Pooled, pooled));
            if (list.Count == 0)
                _awaiting.Remove(enlistment.Transaction);
        }
    }

    /// <summary>
    /// Gives <paramref name="handle"/>, opened inside <paramref name="transaction"/>, a connection of this pool that
    /// was given back inside the same transaction and still waits for its outcome: in its own slot, enlisted
    /// already, its session as the transaction left it. False when there is none (the handle takes a slot then).
    /// </summary>
    private bool TryReclaim(KeepAliveConnection handle, System.Transactions.Transaction transaction)
    {
        (PooledConnection Pooled, TransactionEnlistment Enlistment) found = default;
        lock (_awaiting)
        {
            if (_awaiting.Count == 0 || !_awaiting.TryGetValue(transaction, out var list))
                return false;
            foreach (var entry in list)
            {
                if (entry.Enlistment.TryReclaim())
                {
                    found = entry;
                    break;
                }
            }

            if (found.Pooled is null)
                return false;
            list.Remove(found);
            if (list.Count == 0)
                _awaiting.Remove(transaction);
        }

        ToLeased(found.Pooled, handle);
        if (_options.LeakDetectionThreshold > TimeSpan.Zero)
            found.Pooled.LeaseStack = new System.Diagnostics.StackTrace(2, true).ToString();
        found.Pooled.Enlisted = found.Enlistment;
        found.Pooled.SessionChanged = true; // reset before any other caller, as at its enlistment
        PoolLog.ConnectionReclaimed(_logger, Name, found.Pooled.Id, null);
        return true;
    }

    /// <summary>The pool's part in <paramref name="transaction"/>, for a connection its holder has just enlisted in it.</summary>
    internal TransactionEnlistment Enlist(PooledConnection pooled, System.Transactions.Transaction transaction)
    {
        TransactionEnlistment? enlistment = null;
        enlistment = new(transaction, (failure, late) =>
        {
            ListAwaiting(pooled, enlistment!, add: false);
            TakeBackQuietly(pooled, failure, late);
        });
        return enlistment;
    }

    /// <summary>
    /// <see cref="TakeBack"/> from the thread that completes a system transaction, which must not get the pool's
    /// errors; <paramref name="outcomeUnknown"/> closes the connection instead (the pool never heard the outcome).
    /// </summary>
    private void TakeBackQuietly(PooledConnection pooled, Exception? failure, bool outcomeUnknown = false)
    {
        try
        {
            if (!outcomeUnknown)
            {
                TakeBack(pooled, failure);
                return;
            }

            try
            {
                Close(pooled, Eviction.CleanupFailed("its system transaction completed, but the pool was never told the outcome after the driver: what the driver left on the session is unknown"));
            }
            finally
            {
                _slots.Release();
            }
        }
#pragma warning disable CA1031 // The transaction's outcome is the application's; a failed cleanup is logged.
        catch (Exception e)
#pragma warning restore CA1031
        {
            PoolLog.HousekeepingFailed(_logger, Name, e);
        }
    }

    /// <summary>Cleans a connection that came back (Checking) for the next caller, or closes it, and frees its slot.</summary>
    private void TakeBack(PooledConnection pooled, Exception? failure)
    {
        try
        {
            _metrics.Used(Now - pooled.LeasedAt);
            pooled.LeaseStack = null;
            if (CleanForReuse(pooled, failure ?? pooled.ReportedFailure) is { } eviction)
            {
                Close(pooled, eviction);
                return;
            }

            var now = Now;
            pooled.LastUsed = now;
            pooled.LastAlive = now;
            if (!HandOff(pooled))
                ToIdle(pooled, newest: true);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// Takes back the connections whose handle the application dropped without giving it back, once the
    /// garbage collector has collected the handle: each is cleaned as a return is (a transaction left open
    /// is rolled back, the session reset) and reused, or closed. Runs on the housekeeping thread, every run
    /// and whenever a caller finds no slot free.
    /// </summary>
    /// <remarks>
    /// Weak references, one per physical connection and pointed at each loan's handle, swept here, rather
    /// than a finalizer on the handle: a finalizer would cost every checkout (each handle registered for
    /// finalization, then unregistered on return, on the hot path), and would run on the finalizer thread,
    /// where a cleanup round trip must not block. A collected handle is seen here as soon as it matters: a
    /// caller that finds the pool exhausted asks for a sweep at once (MySqlConnector's pool recovers
    /// leaked sessions at the same moment), and every housekeeping run sweeps too.
    /// </remarks>
    private void RecoverDropped()
    {
        foreach (var pooled in _registry.LeasedSnapshot())
        {
            var leaseId = pooled.LeaseId;
            if (!pooled.HolderDropped(leaseId) || !_registry.TryEndLease(pooled, leaseId, PooledConnectionState.Checking))
                continue;
            _counters.Recover();
            PoolLog.DroppedConnectionRecovered(_logger, Name, pooled.Id, (Now - pooled.LeasedAt).TotalSeconds,
                pooled.LeaseStack ?? "(stack not captured: enable leak detection to see it)", null);

            // Enlisted in a transaction still going: it waits for the outcome (or a connection opened in that
            // transaction) like one given back; cleaned now, it would lose the transaction's work before its commit.
            if (!AwaitsTransaction(pooled, failure: null))
                TakeBack(pooled, failure: null);
        }
    }

    /// <summary>Makes a returned connection fit for the next caller, or says why it must go.</summary>
    private Eviction? CleanForReuse(PooledConnection pooled, Exception? failure)
    {
        var connection = pooled.Connection;
        if (failure is not null && DisconnectClassifier.Classify(failure) is { } disconnect)
        {
            return Eviction.Disconnected(pooled, disconnect);
        }

        if (NodeHealth.Classify(failure) is { } unfit)
        {
            LeaveHost(pooled.Host, unfit);
            return Eviction.HostUnhealthy($"the caller met a node error on {pooled.Host.Name}: {unfit}");
        }

        if (connection.State != ConnectionState.Open)
        {
            return Eviction.CameBackClosed(pooled, connection.State.ToString());
        }

        if (IsDisposed)
            return Eviction.PoolDisposed("returned after the pool was disposed");
        var now = Now;
        if (pooled.IsExpired(now))
            return Eviction.MaxLifetime(pooled, now);
        if (_hosts.Verdict(pooled.Host, pooled.HostGeneration) is { } verdict)
            return Eviction.FromVerdict(verdict);

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
                    return Eviction.CleanupFailed($"its session had to be reset ({why}) and {_driver.Name} offers no reset");
                Counted(pooled, why);
            }

            RestoreDatabase(pooled);
        }
        catch (Exception e) when (NodeHealth.Classify(e) is { } nodeError)
        {
            // A rollback or reset that meets a node error (1047 after a failed commit, say): leave the node too.
            LeaveHost(pooled.Host, nodeError);
            return Eviction.HostUnhealthy($"its cleanup met a node error on {pooled.Host.Name}: {nodeError}");
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or System.IO.IOException or System.Net.Sockets.SocketException)
        {
            return Eviction.CleanupFailed($"could not roll back or reset its session for the next caller: {_settings.Redact(e.Message)}");
        }
        finally
        {
            if (watch is not null && !_watchdog.Finish(watch))
                AdvanceGeneration($"connection {pooled.Id} did not answer its cleanup");
        }

        return null;
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
