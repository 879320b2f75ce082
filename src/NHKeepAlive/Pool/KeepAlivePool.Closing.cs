using System;
using System.Threading;
using NHKeepAlive.Diagnostics;
using NHKeepAlive.Drivers;

namespace NHKeepAlive;

/// <content>Closing: the one way out of the pool for a physical connection, with its reason.</content>
public sealed partial class KeepAlivePool
{
    /// <summary>
    /// Closes a connection that is out of the idle list, once, and forgets it: counted and logged with the
    /// eviction's reason, its socket aborted first where the eviction says so, the generation advanced where
    /// the failure makes older idle connections suspect.
    /// </summary>
    private void Close(PooledConnection pooled, Eviction eviction)
    {
        if (!_registry.BeginClose(pooled))
            return;
        _counters.Evict(eviction.Reason);
        PoolLog.ConnectionEvicted(_logger, Name, pooled.Id, eviction.Reason, eviction.Detail, null);
        if (eviction.AbortSocket)
            AbortSocket(pooled); // Never let Close wait on a dead socket.
        Forget(pooled);
        if (eviction.GenerationDetail is { } why)
            AdvanceGeneration(why);
        if (_options.MinIdle > 0 && !IsDisposed)
            RequestHousekeeping();
    }

    /// <summary>Disposes the driver's connection and drops the pool's record of it (Closing or Opening to Closed).</summary>
    private void Forget(PooledConnection pooled)
    {
        try
        {
            pooled.Connection.Dispose();
        }
#pragma warning disable CA1031 // Closing a dead connection may fail in any way the driver likes; it is gone either way.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        _driver.ForgetSession(pooled.Connection);
        _registry.Forget(pooled);
    }

    /// <summary>Closes the driver's connection object (not the pool's record of it) after its socket died.</summary>
    private void CloseQuietly(PooledConnection pooled)
    {
        AbortSocket(pooled);
        try
        {
            pooled.Connection.Close();
        }
#pragma warning disable CA1031 // Closing a dead connection may fail in any way the driver likes; it is gone either way.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private void AbortSocket(PooledConnection pooled)
    {
        try
        {
            if (pooled.Socket is { } socket)
                SocketAborter.Abort(socket);
            else
                _driver.Abort(pooled.Connection);
        }
#pragma warning disable CA1031 // Aborting is best effort: the connection is being dropped anyway.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private void AdvanceGeneration(string detail)
    {
        var generation = Interlocked.Increment(ref _generation);
        PoolLog.GenerationAdvanced(_logger, Name, generation, detail, null);
    }
}
