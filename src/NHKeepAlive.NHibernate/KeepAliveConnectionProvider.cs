using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;
using NHibernate;
using NHibernate.Connection;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate;

/// <summary>
/// An NHibernate connection provider on the NHKeepAlive pool. Set
/// <c>connection.provider</c> to <c>NHKeepAlive.NHibernate.KeepAliveConnectionProvider, NHKeepAlive.NHibernate</c>
/// and, optionally, <c>nhkeepalive.*</c> properties. It reads <c>connection.connection_string</c> or
/// <c>connection.connection_string_name</c> as NHibernate's own provider does, installs
/// <see cref="KeepAliveMySqlDataDriver"/> (or <see cref="KeepAliveMySqlConnectorDriver"/>) in place of
/// the stock MySQL driver so that connections a session holds are protected too (before each command
/// and before each transaction begins), and owns one pool
/// per connection string, which it disposes with the session factory: two factories never share a pool.
/// The driver is decided once for both the pool and NHibernate: an explicit <c>nhkeepalive.driver</c>
/// (code, appSettings or property) wins, else a <c>connection.driver_class</c> that names MySql.Data or
/// MySqlConnector (NHibernate's stock <c>MySqlDataDriver</c>, which MySQL dialects and FluentNHibernate
/// supply without being asked, names neither), else MySql.Data if the application references it, else
/// MySqlConnector. The two settings naming different drivers is a <see cref="KeepAliveConfigurationException"/>.
/// NHibernate never hands the provider the errors statements meet; <see cref="KeepAliveSqlExceptionConverter"/>
/// reports them to the pool. NHibernate builds its converter before it creates the provider, so a configuration
/// that names only the provider (hibernate.cfg.xml, web.config) names the converter too, as <c>sql_exception_converter</c>
/// (the provider logs a warning where it is missing); <see cref="KeepAliveConfiguration.UseKeepAlive"/> does both.
/// </summary>
public class KeepAliveConnectionProvider : ConnectionProvider
{
    private static readonly INHibernateLogger s_log = NHibernateLogger.For(typeof(KeepAliveConnectionProvider));
    // Pools of other connection strings than the configured one (NHibernate's multi-tenancy asks for a tenant's
    // connection string): built once each on first use, retired when quiet.
    private KeepAlivePoolSet? _tenants;
    private readonly NameValueCollection? _appSettings;

    // Driver connections handed to a session whose driver is the application's own (see GetConnection), with their handles.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<DbConnection, KeepAliveConnection> _unwrapped = new();
    private KeepAliveOptions? _options;
    private KeepAliveDriverDecision? _decision;
    private KeepAlivePool? _pool;
    private int _disposed;

    /// <summary>Creates the provider; NHibernate does this by itself when <c>connection.provider</c> names it.</summary>
    public KeepAliveConnectionProvider()
    {
    }

    /// <summary>For tests: a provider that reads <paramref name="appSettings"/> in place of the application's own.</summary>
    internal KeepAliveConnectionProvider(NameValueCollection appSettings)
    {
        _appSettings = appSettings;
    }

    /// <summary>The pool behind <c>connection.connection_string</c> (null before <see cref="Configure"/>).</summary>
    public KeepAlivePool? Pool => _pool;

    /// <summary>
    /// The pools of the other connection strings sessions asked for (a tenant's database, with NHibernate's
    /// multi-tenancy), one per connection string, retired when quiet for <c>nhkeepalive.tenant_pool_retire_after</c>
    /// (null before <see cref="Configure"/>).
    /// </summary>
    public KeepAlivePoolSet? TenantPools => _tenants;

    /// <summary>The configured connection string (<c>connection.connection_string</c> or the one it names), which tenants' strings are made from.</summary>
    internal string ConfiguredConnectionString
    {
        get
        {
            ThrowIfClosed();
            return ConnectionString;
        }
    }

    /// <summary>The driver decided for the pool and NHibernate.</summary>
    internal MySqlDriver MySqlDriver => _decision?.Driver ?? throw new InvalidOperationException("The connection provider has not been configured.");

    /// <inheritdoc />
    public override void Configure(IDictionary<string, string> settings)
    {
        if (settings is null)
            throw new ArgumentNullException(nameof(settings));
        var options = KeepAliveOptionsRegistry.Resolve(settings, _appSettings);

        // One decision for both the NHibernate driver (ConfigureDriver, called by base.Configure) and the pool.
        var decision = KeepAliveDriverDecision.Decide(options.Driver, settings);
        _decision = decision;
        base.Configure(settings);
        options.ConnectionString = ConnectionString;
        options.Driver = decision.Driver;
        _options = options;

        if (!settings.TryGetValue(Environment.SqlExceptionConverter, out var converter) || string.IsNullOrWhiteSpace(converter))
        {
            // NHibernate built its converter before this provider; only the configuration can name ours.
            s_log.Warn(
                "NHKeepAlive: '{0}' is not set, so the errors statements meet do not reach the pool and a node that refuses queries or is read-only is left only when validation or the keepalive finds it. Set it to {1} (UseKeepAlive(), the builder and FluentNHibernate's KeepAlive() do so by themselves).",
                Environment.SqlExceptionConverter, typeof(KeepAliveSqlExceptionConverter).FullName + ", " + typeof(KeepAliveSqlExceptionConverter).Assembly.GetName().Name);
        }

        // Built now, so that a bad option or connection string fails BuildSessionFactory, not the first query.
        _pool = new KeepAlivePool(options);
        _tenants = new KeepAlivePoolSet(options, options.TenantPoolRetireAfter);
    }

    /// <inheritdoc />
    protected override void ConfigureDriver(IDictionary<string, string> settings)
    {
        if (settings is null)
            throw new ArgumentNullException(nameof(settings));
        var decision = _decision ?? throw new InvalidOperationException("ConfigureDriver is called by Configure.");
        if (!decision.ProtectsHeldConnections)
        {
            s_log.Warn(
                "NHKeepAlive: the driver {0} is not one NHKeepAlive knows; pooled connections are protected, but connections a session holds for its whole life are not. Use {1} or {2}.",
                decision.DriverClass, typeof(KeepAliveMySqlDataDriver).FullName, typeof(KeepAliveMySqlConnectorDriver).FullName);
        }

        var copy = new Dictionary<string, string>(settings) { [Environment.ConnectionDriver] = decision.DriverClass };
        base.ConfigureDriver(copy);
    }

    /// <inheritdoc />
    /// <remarks>
    /// A <see cref="KeepAliveConnection"/> handle, which NHKeepAlive's drivers' commands run on. A driver of the
    /// application's own that does not derive from them creates the driver's own commands, which accept only the
    /// driver's connection: it gets the driver's connection, and such a connection cannot be taken back if the
    /// application drops its session without closing it.
    /// </remarks>
    public override DbConnection GetConnection(string connectionString) =>
        Hand(IsConfigured(connectionString) ? Pool!.Rent() : Tenants.Rent(connectionString));

    /// <inheritdoc />
    public override async Task<DbConnection> GetConnectionAsync(string connectionString, CancellationToken cancellationToken) =>
        Hand(IsConfigured(connectionString)
            ? await Pool!.RentAsync(cancellationToken).ConfigureAwait(false)
            : await Tenants.RentAsync(connectionString, cancellationToken).ConfigureAwait(false));

    /// <inheritdoc />
    public override void CloseConnection(DbConnection conn)
    {
        if (conn is null)
            throw new ArgumentNullException(nameof(conn));
        // A handle knows its pool: giving it back costs no look-up, whichever tenant's pool it came from.
        if (_unwrapped.TryGetValue(conn, out var handle))
        {
            _unwrapped.Remove(conn);
            conn = handle;
        }

        if (KeepAlivePool.OwnerOf(conn) is { } owner)
            owner.Return(conn);
        else
            base.CloseConnection(conn); // not ours: close it, as NHibernate's own provider would
    }

    /// <inheritdoc />
    protected override void Dispose(bool isDisposing)
    {
        if (isDisposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _pool?.Dispose();
            _tenants?.Dispose();
        }

        base.Dispose(isDisposing);
    }

    /// <summary>What the session gets: the handle, or (for a driver of the application's own) the driver's connection under it.</summary>
    private DbConnection Hand(DbConnection rented)
    {
        if (_decision is null || _decision.ProtectsHeldConnections || rented is not KeepAliveConnection handle)
            return rented;
        var inner = handle.InnerConnection;
        _unwrapped.Add(inner, handle);
        return inner;
    }

    /// <summary>Whether <paramref name="connectionString"/> is the configured one (the common case: no tenants).</summary>
    private bool IsConfigured(string connectionString)
    {
        ThrowIfClosed();
        return string.Equals(connectionString, ConnectionString, StringComparison.Ordinal);
    }

    /// <summary>The pools of the tenants' connection strings.</summary>
    private KeepAlivePoolSet Tenants => _tenants ?? throw new InvalidOperationException("The connection provider has not been configured.");

    private void ThrowIfClosed()
    {
        if (Volatile.Read(ref _disposed) != 0)
            throw new ObjectDisposedException(nameof(KeepAliveConnectionProvider), "The session factory that owns this connection provider has been closed.");
        if (_pool is null)
            throw new InvalidOperationException("The connection provider has not been configured.");
    }
}
