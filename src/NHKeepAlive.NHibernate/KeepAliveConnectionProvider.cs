using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;
using NHibernate;
using NHibernate.Connection;
using NHibernate.Driver;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate;

/// <summary>
/// An NHibernate connection provider on the NHKeepAlive pool. Set
/// <c>connection.provider</c> to <c>NHKeepAlive.NHibernate.KeepAliveConnectionProvider, NHKeepAlive.NHibernate</c>
/// and, optionally, <c>nhkeepalive.*</c> properties. It reads <c>connection.connection_string</c> or
/// <c>connection.connection_string_name</c> as NHibernate's own provider does, installs
/// <see cref="KeepAliveMySqlDataDriver"/> (or <see cref="KeepAliveMySqlConnectorDriver"/>) in place of
/// the stock MySQL driver so that connections a session holds are protected too, and owns one pool
/// per connection string, which it disposes with the session factory: two factories never share a pool.
/// </summary>
public class KeepAliveConnectionProvider : ConnectionProvider
{
    private static readonly INHibernateLogger s_log = NHibernateLogger.For(typeof(KeepAliveConnectionProvider));
    private readonly ConcurrentDictionary<string, KeepAlivePool> _pools = new(StringComparer.Ordinal);
    private KeepAliveOptions? _options;
    private KeepAlivePool? _pool;
    private int _disposed;

    /// <summary>The pool behind <c>connection.connection_string</c> (null before <see cref="Configure"/>).</summary>
    public KeepAlivePool? Pool => _pool;

    /// <inheritdoc />
    public override void Configure(IDictionary<string, string> settings)
    {
        if (settings is null)
            throw new ArgumentNullException(nameof(settings));
        base.Configure(settings);
        var options = KeepAliveOptionsRegistry.Resolve(settings);
        options.ConnectionString = ConnectionString;
        if (options.Driver == MySqlDriver.Auto)
            options.Driver = Driver is KeepAliveMySqlConnectorDriver || MentionsMySqlConnector(Driver.GetType().FullName!) ? MySqlDriver.MySqlConnector : MySqlDriver.MySqlData;
        _options = options;

        // Built now, so that a bad option or connection string fails BuildSessionFactory, not the first query.
        _pool = _pools.GetOrAdd(ConnectionString, _ => new KeepAlivePool(options));
    }

    /// <inheritdoc />
    protected override void ConfigureDriver(IDictionary<string, string> settings)
    {
        if (settings is null)
            throw new ArgumentNullException(nameof(settings));
        settings.TryGetValue(Environment.ConnectionDriver, out var configured);
        var replacement = KeepAliveDriverFor(configured, settings);
        if (replacement is null)
        {
            s_log.Warn(
                "NHKeepAlive: the driver {0} is not one NHKeepAlive knows; pooled connections are protected, but connections a session holds for its whole life are not. Use {1} or {2}.",
                configured, typeof(KeepAliveMySqlDataDriver).FullName, typeof(KeepAliveMySqlConnectorDriver).FullName);
            base.ConfigureDriver(settings);
            return;
        }

        var copy = new Dictionary<string, string>(settings) { [Environment.ConnectionDriver] = replacement.AssemblyQualifiedName! };
        base.ConfigureDriver(copy);
    }

    /// <summary>The NHKeepAlive driver that stands in for <paramref name="configured"/>, or null to keep the configured one.</summary>
    internal static Type? KeepAliveDriverFor(string? configured, IDictionary<string, string> settings)
    {
        var typeName = configured?.Split(',')[0].Trim();
        if (string.IsNullOrEmpty(typeName))
        {
            settings.TryGetValue(KeepAliveProperties.Driver, out var wanted);
            return wanted is not null && wanted.Replace(".", string.Empty).Equals("mysqlconnector", StringComparison.OrdinalIgnoreCase)
                ? typeof(KeepAliveMySqlConnectorDriver)
                : typeof(KeepAliveMySqlDataDriver);
        }

        if (typeName == typeof(KeepAliveMySqlDataDriver).FullName || typeName == typeof(MySqlDataDriver).FullName)
            return typeof(KeepAliveMySqlDataDriver);
        if (typeName == typeof(KeepAliveMySqlConnectorDriver).FullName || MentionsMySqlConnector(typeName!))
            return typeof(KeepAliveMySqlConnectorDriver);
        return null;
    }

    /// <inheritdoc />
    public override DbConnection GetConnection(string connectionString) => PoolFor(connectionString).Rent();

    /// <inheritdoc />
    public override Task<DbConnection> GetConnectionAsync(string connectionString, CancellationToken cancellationToken) =>
        PoolFor(connectionString).RentAsync(cancellationToken);

    /// <inheritdoc />
    public override void CloseConnection(DbConnection conn)
    {
        if (conn is null)
            throw new ArgumentNullException(nameof(conn));
        var owner = KeepAlivePool.OwnerOf(conn);
        if (owner is not null && (ReferenceEquals(owner, _pool) || _pools.Values.Contains(owner)))
            owner.Return(conn);
        else
            base.CloseConnection(conn); // not ours: close it, as NHibernate's own provider would
    }

    /// <inheritdoc />
    protected override void Dispose(bool isDisposing)
    {
        if (isDisposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            foreach (var pool in _pools.Values)
                pool.Dispose();
            _pools.Clear();
        }

        base.Dispose(isDisposing);
    }

#pragma warning disable CA2249 // netstandard2.0 has no string.Contains(string, StringComparison).
    private static bool MentionsMySqlConnector(string typeName) => typeName.IndexOf("MySqlConnector", StringComparison.OrdinalIgnoreCase) >= 0;
#pragma warning restore CA2249

    private KeepAlivePool PoolFor(string connectionString)
    {
        if (Volatile.Read(ref _disposed) != 0)
            throw new ObjectDisposedException(nameof(KeepAliveConnectionProvider), "The session factory that owns this connection provider has been closed.");
        var options = _options ?? throw new InvalidOperationException("The connection provider has not been configured.");
        return _pools.GetOrAdd(connectionString, cs =>
        {
            var copy = options.Clone();
            copy.ConnectionString = cs;
            copy.PoolName = null;
            return new KeepAlivePool(copy);
        });
    }
}
