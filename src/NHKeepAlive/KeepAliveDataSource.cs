using System;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive;

// The connection methods hide DbDataSource's (to return KeepAliveConnection) where it exists; elsewhere there is nothing to hide.
#pragma warning disable CS0109

/// <summary>
/// The entry point for ADO.NET code (Dapper, plain commands): a <c>DbDataSource</c> over one
/// <see cref="KeepAlivePool"/>, as MySqlConnector's <c>MySqlDataSource</c> and Npgsql's
/// <c>NpgsqlDataSource</c> are. <see cref="OpenConnection"/> gives an open <see cref="KeepAliveConnection"/>
/// whose <c>Dispose</c> gives it back; <see cref="CreateConnection"/> gives a closed one that takes a
/// connection from the pool when opened (Dapper opens and closes such a connection by itself). Build one per
/// connection string and keep it for the application's life (a singleton); disposing it disposes the pool.
/// On .NET 7 and later it derives from <c>System.Data.Common.DbDataSource</c>, which adds
/// <c>CreateCommand</c> and <c>CreateBatch</c>; on .NET Framework and .NET Standard 2.0 it has the same
/// connection methods without that base class.
/// </summary>
public sealed class KeepAliveDataSource
#if NET7_0_OR_GREATER
    : DbDataSource
#else
    : IDisposable
#endif
{
    /// <summary>A data source on a pool with default options for <paramref name="connectionString"/>.</summary>
    /// <param name="connectionString">The MySQL or MariaDB connection string.</param>
    /// <exception cref="KeepAliveConfigurationException">The connection string is not valid, or no driver is referenced.</exception>
    public KeepAliveDataSource(string connectionString)
        : this(new KeepAliveOptions { ConnectionString = connectionString })
    {
    }

    /// <summary>A data source on a pool built from <paramref name="options"/>.</summary>
    /// <param name="options">The pool's options; checked now and copied.</param>
    /// <exception cref="KeepAliveConfigurationException">An option or the connection string is not valid, or no driver is referenced.</exception>
    public KeepAliveDataSource(KeepAliveOptions options)
    {
        Pool = new KeepAlivePool(options);
    }

    /// <summary>The pool behind this data source (statistics, <see cref="KeepAlivePool.Clear"/>).</summary>
    public KeepAlivePool Pool { get; }

    /// <summary>The connection string without its password.</summary>
#if NET7_0_OR_GREATER
    public override string ConnectionString => Pool.PublicConnectionString;
#else
    public string ConnectionString => Pool.PublicConnectionString;
#endif

    /// <summary>A closed connection that takes a connection from the pool when it is opened.</summary>
    /// <returns>The connection.</returns>
    public new KeepAliveConnection CreateConnection() => new(Pool, null);

    /// <summary>An open connection from the pool; dispose it to give it back.</summary>
    /// <returns>The connection, open.</returns>
    /// <exception cref="PoolTimeoutException">No connection came free within the connection timeout.</exception>
    /// <exception cref="ConnectException">A new connection could not be opened.</exception>
    public new KeepAliveConnection OpenConnection()
    {
        var connection = CreateConnection();
        connection.Open();
        return connection;
    }

    /// <summary>An open connection from the pool, without blocking a thread; dispose it to give it back.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The connection, open.</returns>
    public new async ValueTask<KeepAliveConnection> OpenConnectionAsync(CancellationToken cancellationToken = default)
    {
        var connection = CreateConnection();
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

#if NET7_0_OR_GREATER
    /// <inheritdoc />
    protected override DbConnection CreateDbConnection() => CreateConnection();

    /// <inheritdoc />
    protected override DbConnection OpenDbConnection() => OpenConnection();

    /// <inheritdoc />
    protected override async ValueTask<DbConnection> OpenDbConnectionAsync(CancellationToken cancellationToken = default) =>
        await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            Pool.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>
    /// Disposes the pool: <c>DbDataSource.DisposeAsync</c> (what <c>await using</c> and a host's service
    /// provider call) runs this and then <c>Dispose(false)</c>, which must not be the only place the pool goes.
    /// </summary>
    /// <returns>A completed task: the pool's shutdown is synchronous.</returns>
    protected override ValueTask DisposeAsyncCore()
    {
        Pool.Dispose();
        return base.DisposeAsyncCore();
    }
#else
    /// <summary>Disposes the pool (see <see cref="KeepAlivePool.Dispose"/>).</summary>
    public void Dispose() => Pool.Dispose();
#endif
}
