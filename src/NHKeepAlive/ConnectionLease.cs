using System;
using System.Data.Common;

namespace NHKeepAlive;

/// <summary>A connection on loan from a <see cref="KeepAlivePool"/>; disposing the lease returns it.</summary>
public sealed class ConnectionLease : IDisposable
{
    private readonly KeepAlivePool _pool;
    private Exception? _failure;
    private bool _returned;

    internal ConnectionLease(KeepAlivePool pool, DbConnection connection)
    {
        _pool = pool;
        Connection = connection;
    }

    /// <summary>The open connection (a <see cref="KeepAliveConnection"/>). Dispose the lease, or the connection, to give it back; its driver object is <see cref="KeepAliveConnection.InnerConnection"/>.</summary>
    public DbConnection Connection { get; }

    /// <summary>
    /// Tells the pool about an error met on this connection; if it means the connection is gone
    /// (<see cref="DisconnectClassifier"/>), the pool evicts it when the lease is disposed.
    /// </summary>
    /// <param name="exception">The error.</param>
    public void ReportFailure(Exception exception) => _failure = exception ?? throw new ArgumentNullException(nameof(exception));

    /// <summary>Returns the connection to the pool (once).</summary>
    public void Dispose()
    {
        if (_returned)
            return;
        _returned = true;
        _pool.Return(Connection, _failure);
    }
}
