using System;
using System.Collections.Generic;
using Microsoft.Extensions.Logging;

namespace NHKeepAlive;

/// <summary>
/// What a <see cref="KeepAlivePool"/> is built from. Every setting has a safe default; only
/// <see cref="ConnectionString"/> is required. The values are checked once, when the pool is built
/// (<see cref="KeepAlivePool(KeepAliveOptions)"/>), and copied: changing this object afterwards
/// does not change a running pool. Each option is declared once, in
/// <c>Configuration/KeepAliveOptionTable.cs</c> (name, default, parser, range, doc); a property here
/// only holds the value and remembers that it was set, so that a value set explicitly (in code or by
/// an <c>nhkeepalive.*</c> property) wins over the connection string's pool keywords.
/// </summary>
public sealed class KeepAliveOptions
{
    /// <summary>Default for <see cref="MaxPoolSize"/>: 100, as the drivers' own pools.</summary>
    public const int DefaultMaxPoolSize = 100;

    /// <summary>Default for <see cref="ConnectionTimeout"/>: 15 s.</summary>
    public static readonly TimeSpan DefaultConnectionTimeout = TimeSpan.FromSeconds(15);

    /// <summary>Default for <see cref="ValidationTimeout"/>: 3 s.</summary>
    public static readonly TimeSpan DefaultValidationTimeout = TimeSpan.FromSeconds(3);

    /// <summary>Default for <see cref="ValidationBypassWindow"/>: 500 ms.</summary>
    public static readonly TimeSpan DefaultValidationBypassWindow = TimeSpan.FromMilliseconds(500);

    /// <summary>Default for <see cref="MaxLifetime"/>: 30 minutes.</summary>
    public static readonly TimeSpan DefaultMaxLifetime = TimeSpan.FromMinutes(30);

    /// <summary>Default for <see cref="IdleTimeout"/>: 10 minutes.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Default for <see cref="KeepAliveInterval"/>: 2 minutes, half of the shortest common middlebox
    /// idle timeout (Azure Load Balancer, 4 minutes).
    /// </summary>
    public static readonly TimeSpan DefaultKeepAliveInterval = TimeSpan.FromMinutes(2);

    /// <summary>Default for <see cref="ShutdownGracePeriod"/>: 5 s.</summary>
    public static readonly TimeSpan DefaultShutdownGracePeriod = TimeSpan.FromSeconds(5);

    /// <summary>Default for <see cref="TenantPoolRetireAfter"/>: 10 minutes.</summary>
    public static readonly TimeSpan DefaultTenantPoolRetireAfter = TimeSpan.FromMinutes(10);

    private string? _connectionString = KeepAliveOptionTable.ConnectionString.Default;
    private MySqlDriver _driver = KeepAliveOptionTable.Driver.Default;
    private string? _poolName = KeepAliveOptionTable.PoolName.Default;
    private int _maxPoolSize = KeepAliveOptionTable.MaxPoolSize.Default;
    private int _minIdle = KeepAliveOptionTable.MinIdle.Default;
    private TimeSpan _connectionTimeout = KeepAliveOptionTable.ConnectionTimeout.Default;
    private TimeSpan _validationTimeout = KeepAliveOptionTable.ValidationTimeout.Default;
    private TimeSpan _validationBypassWindow = KeepAliveOptionTable.ValidationBypassWindow.Default;
    private string? _validationQuery = KeepAliveOptionTable.ValidationQuery.Default;
    private TimeSpan _maxLifetime = KeepAliveOptionTable.MaxLifetime.Default;
    private TimeSpan _idleTimeout = KeepAliveOptionTable.IdleTimeout.Default;
    private TimeSpan _keepAliveInterval = KeepAliveOptionTable.KeepAliveInterval.Default;
    private TimeSpan _leakDetectionThreshold = KeepAliveOptionTable.LeakDetectionThreshold.Default;
    private bool _socketCheck = KeepAliveOptionTable.SocketCheck.Default;
    private bool _allowReadOnly = KeepAliveOptionTable.AllowReadOnly.Default;
    private SessionResetPolicy _sessionReset = KeepAliveOptionTable.SessionReset.Default;
    private TimeSpan _shutdownGracePeriod = KeepAliveOptionTable.ShutdownGracePeriod.Default;
    private TimeSpan _tenantPoolRetireAfter = KeepAliveOptionTable.TenantPoolRetireAfter.Default;

    // One bit per option (KeepAliveOption.Index) that was assigned, whatever the value; a value type, so Clone copies it.
    private ulong _explicit;

    /// <summary>
    /// The ADO.NET connection string of the MySQL or MariaDB server. The driver's own pooling is
    /// always turned off (<c>Pooling=false</c>): the pool owns the physical connections.
    /// </summary>
    public string? ConnectionString
    {
        get => _connectionString;
        set => Assign(ref _connectionString, value, KeepAliveOptionTable.ConnectionString);
    }

    /// <summary>The driver to use; <see cref="MySqlDriver.Auto"/> (the default) picks the one the application references.</summary>
    public MySqlDriver Driver
    {
        get => _driver;
        set => Assign(ref _driver, value, KeepAliveOptionTable.Driver);
    }

    /// <summary>A name that tells pools apart in logs and metrics. Default: server, port and database of the connection string.</summary>
    public string? PoolName
    {
        get => _poolName;
        set => Assign(ref _poolName, value, KeepAliveOptionTable.PoolName);
    }

    /// <summary>The most physical connections the pool holds, in use and idle together. Default 100.</summary>
    public int MaxPoolSize
    {
        get => _maxPoolSize;
        set => Assign(ref _maxPoolSize, value, KeepAliveOptionTable.MaxPoolSize);
    }

    /// <summary>Idle connections the pool keeps open and refills in the background. Default 0.</summary>
    public int MinIdle
    {
        get => _minIdle;
        set => Assign(ref _minIdle, value, KeepAliveOptionTable.MinIdle);
    }

    /// <summary>
    /// The longest a caller waits for a connection when the pool is at <see cref="MaxPoolSize"/>; it
    /// then gets a <see cref="PoolTimeoutException"/> that tells the pool's state. Default 15 s.
    /// </summary>
    public TimeSpan ConnectionTimeout
    {
        get => _connectionTimeout;
        set => Assign(ref _connectionTimeout, value, KeepAliveOptionTable.ConnectionTimeout);
    }

    /// <summary>
    /// The longest one validation (ping or <see cref="ValidationQuery"/>) may take; a connection that
    /// does not answer in time (a blackholed or hung socket) is aborted and discarded, and the caller
    /// gets another. Must be shorter than <see cref="ConnectionTimeout"/>. Default 3 s.
    /// </summary>
    public TimeSpan ValidationTimeout
    {
        get => _validationTimeout;
        set => Assign(ref _validationTimeout, value, KeepAliveOptionTable.ValidationTimeout);
    }

    /// <summary>
    /// A connection that was last seen alive within this window is handed out without validation,
    /// which saves the round trip that the drivers' pools spend on every checkout. Zero validates
    /// every checkout. Default 500 ms.
    /// </summary>
    public TimeSpan ValidationBypassWindow
    {
        get => _validationBypassWindow;
        set => Assign(ref _validationBypassWindow, value, KeepAliveOptionTable.ValidationBypassWindow);
    }

    /// <summary>
    /// The SQL to validate with instead of the protocol ping (COM_PING), e.g. <c>DO 1</c>. Null (the
    /// default) uses the ping, which is the cheapest round trip there is.
    /// </summary>
    public string? ValidationQuery
    {
        get => _validationQuery;
        set => Assign(ref _validationQuery, value, KeepAliveOptionTable.ValidationQuery);
    }

    /// <summary>
    /// A connection older than this (less a random jitter of up to 2.5 %, so that connections made
    /// together do not retire together) is closed when it is next idle; never while a caller holds
    /// it. Zero means no limit. Default 30 minutes.
    /// </summary>
    public TimeSpan MaxLifetime
    {
        get => _maxLifetime;
        set => Assign(ref _maxLifetime, value, KeepAliveOptionTable.MaxLifetime);
    }

    /// <summary>Idle connections above <see cref="MinIdle"/> unused for this long are closed. Zero means never. Default 10 minutes.</summary>
    public TimeSpan IdleTimeout
    {
        get => _idleTimeout;
        set => Assign(ref _idleTimeout, value, KeepAliveOptionTable.IdleTimeout);
    }

    /// <summary>
    /// The upper bound of the keepalive interval. The pool pings every connection that has been idle
    /// this long, or half the server's <c>wait_timeout</c> if that is shorter (read at first
    /// connect). Keep it below the idle timeout of any NAT, firewall or load balancer between the
    /// application and the server. Zero turns the keepalive off. Default 2 minutes.
    /// </summary>
    public TimeSpan KeepAliveInterval
    {
        get => _keepAliveInterval;
        set => Assign(ref _keepAliveInterval, value, KeepAliveOptionTable.KeepAliveInterval);
    }

    /// <summary>
    /// A connection held by one caller for longer than this is logged as a probable leak, with the
    /// stack of the code that took it. Zero (the default) turns leak detection off; taking the stack
    /// costs a few microseconds per checkout when it is on.
    /// </summary>
    public TimeSpan LeakDetectionThreshold
    {
        get => _leakDetectionThreshold;
        set => Assign(ref _leakDetectionThreshold, value, KeepAliveOptionTable.LeakDetectionThreshold);
    }

    /// <summary>
    /// Whether the pool polls the TCP socket under each connection (a non-blocking check that costs
    /// well under a microsecond and no round trip) before handing it out, before a held connection's
    /// command or transaction, and in the keepalive sweep: a connection the server or a proxy closed
    /// (KILL, <c>wait_timeout</c>, restart, failover, RST) is then found dead without a ping, even inside
    /// the bypass window. Where no socket can be found (a unix socket, a named pipe) the pool falls back
    /// to pings alone and logs that once. Default true.
    /// </summary>
    public bool SocketCheck
    {
        get => _socketCheck;
        set => Assign(ref _socketCheck, value, KeepAliveOptionTable.SocketCheck);
    }

    /// <summary>
    /// Whether a read-only server counts as healthy. False (the default) is for a pool that writes:
    /// with a host list (<c>Server=a,b,c</c>) a read-only host is left for the next one, and error
    /// 1290 on a connection closes it. Set it for a pool meant for reads on replicas.
    /// </summary>
    public bool AllowReadOnly
    {
        get => _allowReadOnly;
        set => Assign(ref _allowReadOnly, value, KeepAliveOptionTable.AllowReadOnly);
    }

    /// <summary>
    /// How session state that one caller leaves on a connection (autocommit, an open transaction, the
    /// current database, user variables, named locks, temporary tables, session variables) is kept
    /// from the next caller. <see cref="SessionResetPolicy.Auto"/> (the default) resets only a
    /// connection whose session may have changed (see the policy for what each driver can see), at no
    /// round trip on a clean return.
    /// </summary>
    public SessionResetPolicy SessionReset
    {
        get => _sessionReset;
        set => Assign(ref _sessionReset, value, KeepAliveOptionTable.SessionReset);
    }

    /// <summary>
    /// How long <see cref="KeepAlivePool.Dispose"/> waits for connections still on loan before it closes
    /// them (each is logged, with the stack that took it when leak detection is on). Idle connections
    /// close at once. Zero closes everything at once. Default 5 s.
    /// </summary>
    public TimeSpan ShutdownGracePeriod
    {
        get => _shutdownGracePeriod;
        set => Assign(ref _shutdownGracePeriod, value, KeepAliveOptionTable.ShutdownGracePeriod);
    }

    /// <summary>
    /// For NHibernate's multi-tenancy (a database per tenant): a pool of another connection string than the
    /// configured one with nothing on loan for this long is closed and built again on its next use, so that a
    /// quiet tenant costs no connection. The configured connection string's pool is never retired. Zero keeps
    /// every pool. Default 10 minutes.
    /// </summary>
    public TimeSpan TenantPoolRetireAfter
    {
        get => _tenantPoolRetireAfter;
        set => Assign(ref _tenantPoolRetireAfter, value, KeepAliveOptionTable.TenantPoolRetireAfter);
    }

    /// <summary>Where the pool logs (category <c>NHKeepAlive.Pool</c>). Default: nowhere.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>The clock and timers the pool uses; tests pass a fake one. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider? TimeProvider { get; set; }

    /// <summary>
    /// Whether the pool may take the server's wait_timeout from another pool of the process that connected to the
    /// same server as the same user within the last minutes, instead of reading it on its first connection (set by
    /// <see cref="KeepAlivePoolSet"/>: a tenant's first session costs no extra round trip).
    /// </summary>
    internal bool SharesServerFacts { get; set; }

    /// <summary>A shallow copy of these options, with the record of which were set explicitly.</summary>
    /// <returns>The copy.</returns>
    public KeepAliveOptions Clone() => (KeepAliveOptions)MemberwiseClone();

    /// <summary>Whether <paramref name="option"/> was assigned (in code or by a property), even to its default.</summary>
    internal bool IsExplicit(KeepAliveOption option) => (_explicit & (1UL << option.Index)) != 0;

    /// <summary>
    /// Reads options from string properties named <c>nhkeepalive.*</c> (as in hibernate.cfg.xml or
    /// web.config appSettings) on top of the defaults. Properties without that prefix are ignored;
    /// unknown <c>nhkeepalive.*</c> names and values that do not parse are rejected.
    /// </summary>
    /// <param name="properties">The properties, e.g. NHibernate's configuration properties.</param>
    /// <returns>The options; <see cref="ConnectionString"/> is left for the caller to set unless a <c>nhkeepalive.connection_string</c> property gives it.</returns>
    /// <exception cref="KeepAliveConfigurationException">A property is unknown or its value does not parse.</exception>
    public static KeepAliveOptions FromProperties(IEnumerable<KeyValuePair<string, string>> properties)
    {
        var options = new KeepAliveOptions();
        options.ApplyProperties(properties);
        return options;
    }

    /// <summary>Applies <c>nhkeepalive.*</c> properties to these options; see <see cref="FromProperties"/>.</summary>
    /// <param name="properties">The properties.</param>
    /// <returns>These options.</returns>
    /// <exception cref="KeepAliveConfigurationException">A property is unknown or its value does not parse.</exception>
    public KeepAliveOptions ApplyProperties(IEnumerable<KeyValuePair<string, string>> properties)
    {
        if (properties is null)
            throw new ArgumentNullException(nameof(properties));
        foreach (var pair in properties)
            KeepAliveProperties.Apply(this, pair.Key, pair.Value);
        return this;
    }

    private void Assign<T>(ref T field, T value, KeepAliveOption option)
    {
        field = value;
        _explicit |= 1UL << option.Index;
    }
}
