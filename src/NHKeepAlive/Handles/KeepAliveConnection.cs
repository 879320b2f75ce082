using System;
using System.Data;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive;

/// <summary>
/// The connection a caller holds: a handle over one physical connection on loan from a
/// <see cref="KeepAlivePool"/> (as HikariCP's <c>ProxyConnection</c> over its <c>PoolEntry</c>, or
/// MySqlConnector's <c>MySqlConnection</c> over its <c>ServerSession</c>). Commands and transactions
/// created through it, and driver commands attached to it, run on the physical connection.
/// <see cref="DbConnection.Close"/> or <see cref="IDisposable.Dispose"/> gives the physical connection
/// back; after that the handle refuses every use (<see cref="ObjectDisposedException"/>), so a captured
/// reference can never reach the next caller's session. A handle that is opened again
/// (<see cref="Open"/>, as Dapper does with a connection it found closed) takes a new physical connection;
/// a disposed one, or one given back with <see cref="KeepAlivePool.Return"/>, cannot be opened again.
/// A handle the application drops without giving it back is found once the garbage collector has
/// collected it, and its physical connection is cleaned and reused (see <see cref="KeepAlivePool"/>).
/// </summary>
public sealed class KeepAliveConnection : DbConnection
{
    private readonly KeepAlivePool _pool;
    private PooledConnection? _pooled;
    private int _leaseId;
    private bool _disposed;

    internal KeepAliveConnection(KeepAlivePool pool, PooledConnection? pooled)
    {
        _pool = pool;
        if (pooled is not null)
            Attach(pooled);
    }

    /// <summary>The pool this handle's connections come from.</summary>
    public KeepAlivePool Pool => _pool;

    /// <summary>
    /// The driver's own connection object (a <c>MySqlConnection</c> of MySql.Data or MySqlConnector), for
    /// driver-specific APIs such as bulk copy. It stays valid only while this handle is open: keep the handle
    /// referenced while you use it, and never close, dispose or reopen it yourself.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The handle has given its connection back.</exception>
    public DbConnection InnerConnection => Physical;

    /// <inheritdoc />
    /// <remarks>The driver's view of the open connection (without the password); a closed handle shows the pool's connection string without the password. It cannot be changed: the pool owns it.</remarks>
#pragma warning disable CS8765 // The base setter accepts null; this one refuses every value but the current one.
    public override string ConnectionString
    {
        get => _pooled?.Connection.ConnectionString ?? _pool.PublicConnectionString;
        set
        {
            if (!string.Equals(value, ConnectionString, StringComparison.Ordinal))
                throw new NotSupportedException($"The connection string of a connection from pool '{_pool.Name}' is the pool's: build another pool (or KeepAliveDataSource) for another connection string.");
        }
    }
#pragma warning restore CS8765

    /// <inheritdoc />
    public override string Database => _pooled?.Connection.Database ?? string.Empty;

    /// <inheritdoc />
    public override string DataSource => _pooled?.Connection.DataSource ?? _pool.Name;

    /// <inheritdoc />
    public override string ServerVersion => Physical.ServerVersion;

    /// <inheritdoc />
    public override int ConnectionTimeout => _pooled?.Connection.ConnectionTimeout ?? (int)Math.Ceiling(_pool.ConnectionTimeout.TotalSeconds);

    /// <inheritdoc />
    /// <remarks>Open while the handle holds a connection (Closed or Broken if the driver closed it after a fatal error); Closed once it is given back.</remarks>
    public override ConnectionState State => _pooled?.Connection.State ?? ConnectionState.Closed;

    /// <summary>The physical connection on loan to this handle, or null when it holds none.</summary>
    internal PooledConnection? Pooled => _pooled;

    /// <summary>The lease this handle holds (what <see cref="Pooled"/>'s lease number was when it was handed out).</summary>
    internal int LeaseId => _leaseId;

    /// <summary>The driver's connection, or the reason this handle cannot be used.</summary>
    internal DbConnection Physical => (_pooled ?? throw NotOpen()).Connection;

    /// <summary>Takes a connection from the pool, unless this handle already holds one.</summary>
    /// <exception cref="ObjectDisposedException">The handle was disposed or given back with <see cref="KeepAlivePool.Return"/>.</exception>
    /// <remarks>Inside a <c>TransactionScope</c> the connection is enlisted in it, as the drivers' own connections are (unless the connection string says <c>AutoEnlist=false</c>).</remarks>
    public override void Open()
    {
        BeforeOpen();
        _pool.Attach(this);
        EnlistInAmbient();
    }

    /// <inheritdoc />
    public override async Task OpenAsync(CancellationToken cancellationToken)
    {
        BeforeOpen();
        await _pool.AttachAsync(this, cancellationToken).ConfigureAwait(false);
        EnlistInAmbient();
    }

    /// <summary>Gives the physical connection back to the pool; the handle may be opened again.</summary>
    public override void Close()
    {
        if (_pooled is not null)
            _pool.GiveBack(this, failure: null, final: false);
    }

    /// <inheritdoc />
    public override void ChangeDatabase(string databaseName) => Physical.ChangeDatabase(databaseName);

    /// <inheritdoc />
    public override DataTable GetSchema() => Physical.GetSchema();

    /// <inheritdoc />
    public override DataTable GetSchema(string collectionName) => Physical.GetSchema(collectionName);

    /// <inheritdoc />
    public override DataTable GetSchema(string collectionName, string?[] restrictionValues) => Physical.GetSchema(collectionName, restrictionValues);

    /// <inheritdoc />
    /// <remarks>
    /// The physical connection stays with this transaction until it completes: given back earlier (as NHibernate
    /// does when a session closes inside a <c>TransactionScope</c>), it reaches the pool only when the transaction
    /// has committed or rolled back, and its session is reset first (what a distributed transaction leaves, such
    /// as MySqlConnector's XA state, never reaches the next caller).
    /// The driver's enlistment begins the transaction on the server (its <c>BEGIN</c>); like
    /// <see cref="BeginDbTransaction"/>, a disconnect there closes that connection and enlists a live one taken
    /// under this same handle, once: nothing of the caller's ran inside the transaction yet (where the driver and
    /// the runtime leave the transaction fit for it: not MySql.Data under Mono).
    /// </remarks>
    public override void EnlistTransaction(System.Transactions.Transaction? transaction)
    {
        var pooled = _pooled ?? throw NotOpen();
        if (transaction is not null && pooled.Enlisted?.Transaction == transaction)
            return; // Enlisted in it already (a connection this transaction gave back and took again).
        try
        {
            pooled.Connection.EnlistTransaction(transaction);
        }
        catch (Exception e) when (transaction is not null && pooled.Enlisted is null && _pool.EnlistsAgainAfterFailure && DisconnectClassifier.Classify(e) is { } disconnect)
        {
            _pool.StartAgain(this, disconnect);
            pooled = Pooled!;
            pooled.Connection.EnlistTransaction(transaction);
        }

        if (transaction is not null && pooled.Enlisted?.Transaction != transaction)
        {
            // After the driver's own enlistment, so that the pool hears of the outcome after the driver.
            pooled.Enlisted = _pool.Enlist(pooled, transaction);
            pooled.SessionChanged = true;
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"KeepAliveConnection (pool '{_pool.Name}', {(_pooled is { } pooled ? $"connection {pooled.Id}" : _disposed ? "disposed" : "closed")})";

    /// <summary>Records the physical connection this handle now holds; the pool calls it once per lease.</summary>
    internal void Attach(PooledConnection pooled)
    {
        _pooled = pooled;
        _leaseId = pooled.LeaseId;
        pooled.Hold(this);
    }

    /// <summary>Lets go of the physical connection (the pool is taking it back); <paramref name="final"/> also makes the handle unusable for good.</summary>
    internal void Detach(bool final)
    {
        _pooled = null;
        if (final)
            _disposed = true;
    }

    /// <inheritdoc />
    /// <remarks>
    /// No transaction is open when one begins, so nothing of the caller's is lost if the connection turns out
    /// to be dead at that moment (a server close that raced the checkout's checks): a disconnect on
    /// <c>BEGIN</c> (or the isolation level's <c>SET TRANSACTION</c> before it) closes that connection, and the
    /// transaction begins once more on a live one taken under this same handle. Any other error, and a second
    /// disconnect, reach the caller.
    /// </remarks>
    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel)
    {
        try
        {
            return new KeepAliveTransaction(this, Physical.BeginTransaction(isolationLevel));
        }
        catch (Exception e) when (DisconnectClassifier.Classify(e) is { } disconnect && _pooled is not null)
        {
            _pool.StartAgain(this, disconnect);
            return new KeepAliveTransaction(this, Physical.BeginTransaction(isolationLevel));
        }
    }

#if NET
    /// <inheritdoc />
    /// <remarks>Begins again on a live connection after a disconnect, as <see cref="BeginDbTransaction"/> does.</remarks>
    protected override async ValueTask<DbTransaction> BeginDbTransactionAsync(IsolationLevel isolationLevel, CancellationToken cancellationToken)
    {
        try
        {
            return new KeepAliveTransaction(this, await Physical.BeginTransactionAsync(isolationLevel, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e) when (DisconnectClassifier.Classify(e) is { } disconnect && _pooled is not null)
        {
            await _pool.StartAgainAsync(this, disconnect, cancellationToken).ConfigureAwait(false);
            return new KeepAliveTransaction(this, await Physical.BeginTransactionAsync(isolationLevel, cancellationToken).ConfigureAwait(false));
        }
    }
#endif

    /// <inheritdoc />
    protected override DbCommand CreateDbCommand() =>
        new KeepAliveCommand(this, _pooled is { } pooled ? pooled.Connection.CreateCommand() : _pool.CreateDriverCommand());

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close();
            _disposed = true;
        }

        base.Dispose(disposing);
    }

    private void EnlistInAmbient()
    {
        if (!_pool.AutoEnlist || System.Transactions.Transaction.Current is not { } ambient)
            return;
        try
        {
            EnlistTransaction(ambient);
        }
        catch
        {
            Close();
            throw;
        }
    }

    private void BeforeOpen()
    {
        if (_disposed)
            throw NotOpen();
        if (_pooled is not null)
            throw new InvalidOperationException($"The connection from pool '{_pool.Name}' is already open.");
    }

    /// <summary>Why a handle that holds no connection cannot be used.</summary>
    internal Exception NotOpen() => _disposed
        ? new ObjectDisposedException(nameof(KeepAliveConnection), $"This connection was given back to pool '{_pool.Name}' and cannot be used any more: take another one from the pool.")
        : new ObjectDisposedException(nameof(KeepAliveConnection), $"This connection from pool '{_pool.Name}' is closed (it was never opened, or was given back): call Open() first.");
}
