using System;
using System.Data;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive;

/// <summary>
/// A command over the driver's own command, bound to a <see cref="KeepAliveConnection"/>: it runs on the
/// handle's physical connection and refuses to run once the handle has given it back. Its
/// <see cref="DbCommand.Connection"/> and <see cref="DbCommand.Transaction"/> setters accept the handle
/// and its transactions (and the driver's own objects), so that NHibernate, Dapper and plain ADO.NET code
/// use it as they use the driver's command (MiniProfiler's <c>ProfiledDbCommand</c> works the same way).
/// </summary>
public sealed class KeepAliveCommand : DbCommand
{
    private readonly DbCommand _inner;
    private KeepAliveConnection? _handle;
    private KeepAliveTransaction? _transaction;

    internal KeepAliveCommand(KeepAliveConnection? handle, DbCommand inner)
    {
        _inner = inner;
        _handle = handle;
    }

    /// <summary>Wraps a driver command (NHibernate's drivers do this for the commands they create), so that it can run on a <see cref="KeepAliveConnection"/>.</summary>
    /// <param name="command">The driver's command; not yet bound to a connection, or bound to the driver's own.</param>
    /// <returns>The command, wrapped; one already wrapped is returned as it is.</returns>
    public static DbCommand Wrap(DbCommand command) => command switch
    {
        null => throw new ArgumentNullException(nameof(command)),
        KeepAliveCommand wrapped => wrapped,
        _ => new KeepAliveCommand(null, command),
    };

    /// <summary>The driver's own command object, for driver-specific APIs.</summary>
    public DbCommand InnerCommand => _inner;

    /// <inheritdoc />
#pragma warning disable CS8765 // The base setter accepts null; so does this one.
    public override string CommandText
    {
        get => _inner.CommandText;
        set => _inner.CommandText = value;
    }
#pragma warning restore CS8765

    /// <inheritdoc />
    public override int CommandTimeout
    {
        get => _inner.CommandTimeout;
        set => _inner.CommandTimeout = value;
    }

    /// <inheritdoc />
    public override CommandType CommandType
    {
        get => _inner.CommandType;
        set => _inner.CommandType = value;
    }

    /// <inheritdoc />
    public override bool DesignTimeVisible
    {
        get => _inner.DesignTimeVisible;
        set => _inner.DesignTimeVisible = value;
    }

    /// <inheritdoc />
    public override UpdateRowSource UpdatedRowSource
    {
        get => _inner.UpdatedRowSource;
        set => _inner.UpdatedRowSource = value;
    }

    /// <inheritdoc />
    protected override DbConnection? DbConnection
    {
        get => (DbConnection?)_handle ?? _inner.Connection;
        set
        {
            if (value is KeepAliveConnection handle)
            {
                _handle = handle;
                if (handle.Pooled is { } pooled && !ReferenceEquals(_inner.Connection, pooled.Connection))
                    _inner.Connection = pooled.Connection;
            }
            else
            {
                _handle = null;
                _inner.Connection = value;
            }
        }
    }

    /// <inheritdoc />
    protected override DbParameterCollection DbParameterCollection => _inner.Parameters;

    /// <inheritdoc />
    protected override DbTransaction? DbTransaction
    {
        get => (DbTransaction?)_transaction ?? _inner.Transaction;
        set
        {
            _transaction = value as KeepAliveTransaction;
            _inner.Transaction = _transaction is { } wrapped ? wrapped.InnerTransaction : value;
        }
    }

    /// <inheritdoc />
    public override void Cancel() => _inner.Cancel();

    /// <inheritdoc />
    public override int ExecuteNonQuery()
    {
        Bind();
        return _inner.ExecuteNonQuery();
    }

    /// <inheritdoc />
    public override object? ExecuteScalar()
    {
        Bind();
        return _inner.ExecuteScalar();
    }

    /// <inheritdoc />
    public override async Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken)
    {
        Bind();
        return await _inner.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override async Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken)
    {
        Bind();
        return await _inner.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override void Prepare()
    {
        Bind();
        _inner.Prepare();
    }

    /// <inheritdoc />
    protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior)
    {
        var closeHandle = Bind(ref behavior);
        var reader = _inner.ExecuteReader(behavior);
        return closeHandle is null ? reader : new KeepAliveDataReader(reader, closeHandle);
    }

    /// <inheritdoc />
    protected override async Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken)
    {
        var closeHandle = Bind(ref behavior);
        var reader = await _inner.ExecuteReaderAsync(behavior, cancellationToken).ConfigureAwait(false);
        return closeHandle is null ? reader : new KeepAliveDataReader(reader, closeHandle);
    }

    /// <inheritdoc />
    protected override DbParameter CreateDbParameter() => _inner.CreateParameter();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _inner.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>
    /// Before the command runs: a handle that has given its connection back refuses (it must never reach
    /// the next caller's session), and the driver's command is pointed at the handle's physical connection
    /// (the same handle may have been opened again on another one).
    /// </summary>
    private void Bind()
    {
        if (_handle is not { } handle)
            return;
        var connection = handle.Physical;
        if (!ReferenceEquals(_inner.Connection, connection))
            _inner.Connection = connection;
    }

    /// <summary>
    /// <see cref="Bind()"/> for a reader. <see cref="CommandBehavior.CloseConnection"/> (what Dapper and
    /// <c>DbDataSource</c> ask for when they opened the connection themselves) must close the handle, not the
    /// driver's connection: it is taken off the behavior and the handle to close is returned.
    /// </summary>
    private KeepAliveConnection? Bind(ref CommandBehavior behavior)
    {
        Bind();
        if (_handle is null || (behavior & CommandBehavior.CloseConnection) == 0)
            return null;
        behavior &= ~CommandBehavior.CloseConnection;
        return _handle;
    }
}
