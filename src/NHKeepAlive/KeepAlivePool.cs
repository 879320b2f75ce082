using System;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using NHKeepAlive.Diagnostics;
using NHKeepAlive.Drivers;

namespace NHKeepAlive;

/// <summary>
/// A health-aware pool of MySQL/MariaDB connections. It hands out only connections that are alive:
/// each one's socket is checked without a round trip (a connection the server or a proxy closed is
/// found at once), one idle past the validation bypass window is also pinged (bounded by the
/// validation timeout), one past its max lifetime is retired, housekeeping pings every idle connection
/// before the server's <c>wait_timeout</c> or a middlebox can drop it, and a connection that comes back
/// broken is evicted and makes the pool validate every idle connection older than the failure. A caller
/// gets a <see cref="KeepAliveConnection"/>, a handle over the physical connection: once given back it
/// refuses every use, and one the application drops without giving it back is taken back after the
/// garbage collector collects it. Every physical connection is in exactly one
/// <see cref="PooledConnectionState"/> at every moment (<see cref="ConnectionRegistry"/>) and is closed
/// exactly once. Thread-safe; sync and async checkouts share one code path.
/// </summary>
public sealed partial class KeepAlivePool : IDisposable
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> the pools publish their instruments on.</summary>
    public const string MeterName = "NHKeepAlive";

    // The lifetimes' jitter, for every pool of the process (NextRandom locks it): seeding a Random of its own from the
    // system's generator cost a pool per tenant tens of microseconds.
    private static readonly Random s_jitter = new();

    private readonly PoolSettings _settings;
    private readonly KeepAliveOptions _options;
    private readonly DriverAdapter _driver;
    private readonly TimeProvider _time;
    private readonly long _startTimestamp;
    private readonly ILogger _logger;
    private readonly PoolCounters _counters = new();
    private readonly PoolMetrics _metrics;
    private readonly Random _random;
    private readonly ConnectionRegistry _registry;
    private readonly SemaphoreSlim _slots;
    private readonly ServerHostSet _hosts;
    private readonly ValidationWatchdog _watchdog;

    private ServerFacts _facts;
    private DriverCapabilities? _capabilities;
    private int _pending;
    private int _generation;
    private int _nextId;
    private int _disposed;
    private int _noSocketLogged;

    // Pings on the wire (WirePing) until one gets a reply that is not a reply to COM_PING.
    private volatile bool _wirePing = true;

    /// <summary>Builds a pool. Connections are opened at the first checkout, and <see cref="KeepAliveOptions.MinIdle"/> of them right away in the background.</summary>
    /// <param name="options">The options; checked now and copied.</param>
    /// <exception cref="KeepAliveConfigurationException">An option or the connection string is not valid, or no driver is referenced.</exception>
    public KeepAlivePool(KeepAliveOptions options)
        : this(PoolSettings.Create(options), s_jitter)
    {
    }

    internal KeepAlivePool(PoolSettings settings, Random random)
    {
        _settings = settings;
        _options = settings.Options;
        _driver = settings.Driver;
        _time = settings.TimeProvider;
        _random = random;
        _startTimestamp = _time.GetTimestamp();
        _logger = settings.LoggerFactory.CreateLogger("NHKeepAlive.Pool");
        _registry = new ConnectionRegistry(settings.PoolName, _options.MaxPoolSize, () => IsDisposed);
        _slots = _registry.Slots;
        _hosts = new ServerHostSet(settings.Hosts);
        _watchdog = new ValidationWatchdog(_time, AbortSocket);
        _facts = ServerFacts.Initial(_options);
        _metrics = new PoolMetrics(settings.PoolName, _options.MaxPoolSize, _options.MinIdle, GetStatistics, _counters);
        _housekeeping = HousekeepingScheduler.Shared.Register(HousekeepingTurn, FirstHousekeeping);
        if (_time != TimeProvider.System)
            _timer = _time.CreateTimer(static s => ((KeepAlivePool)s!).RequestHousekeeping(), this, HousekeepingPeriod, Timeout.InfiniteTimeSpan);
        if (_options.MinIdle > 0)
            RequestHousekeeping();
        Lifetime.PoolLifetime.Register(this);
    }

    /// <summary>The pool's name, as logs and metrics show it.</summary>
    public string Name => _settings.PoolName;

    /// <summary>The driver the pool opens connections with: MySql.Data or MySqlConnector.</summary>
    public string DriverName => _driver.Name;

    /// <summary>The connection string without its password: what a closed handle shows.</summary>
    internal string PublicConnectionString => _settings.PublicConnectionString;

    /// <summary>Whether a handle opened inside a TransactionScope enlists in it (the connection string's AutoEnlist, true unless it says false).</summary>
    internal bool AutoEnlist => _settings.AutoEnlist;

    /// <summary>How long a caller waits for a connection.</summary>
    internal TimeSpan ConnectionTimeout => _options.ConnectionTimeout;

    private TimeSpan Now => _time.GetElapsedTime(_startTimestamp);

    private bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    private ServerFacts Facts => Volatile.Read(ref _facts);

    /// <summary>Takes an open, validated connection; give it back with <see cref="Return"/> or by disposing it.</summary>
    /// <remarks>Inside a <c>TransactionScope</c> the connection is enlisted in it, as <see cref="KeepAliveConnection.Open"/> enlists (unless the connection string says <c>AutoEnlist=false</c>).</remarks>
    /// <returns>A <see cref="KeepAliveConnection"/>, open.</returns>
    /// <exception cref="PoolTimeoutException">No connection came free within the connection timeout.</exception>
    /// <exception cref="ConnectException">A new connection could not be opened.</exception>
    /// <exception cref="ObjectDisposedException">The pool is disposed.</exception>
    public DbConnection Rent() => OpenHandle();

    /// <summary>
    /// Takes an open, validated connection without blocking a thread; give it back with <see cref="Return"/>
    /// or by disposing it. A cancelled call returns at once, even while a connection is being opened or
    /// validated for it; that connection then goes to the idle list (or is closed), never leaked.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A <see cref="KeepAliveConnection"/>, open.</returns>
    /// <exception cref="PoolTimeoutException">No connection came free within the connection timeout.</exception>
    /// <exception cref="ConnectException">A new connection could not be opened.</exception>
    public async Task<DbConnection> RentAsync(CancellationToken cancellationToken = default) =>
        await OpenHandleAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Takes a connection wrapped in a lease that returns it when disposed.</summary>
    /// <returns>The lease.</returns>
    public ConnectionLease Lease() => new(this, OpenHandle());

    /// <summary>Takes a connection wrapped in a lease that returns it when disposed.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The lease.</returns>
    public async Task<ConnectionLease> LeaseAsync(CancellationToken cancellationToken = default) =>
        new(this, await OpenHandleAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Gives a connection back for good: the handle refuses every later use. A connection that the driver
    /// closed after an error, or that <paramref name="failure"/> shows is gone, is evicted; a transaction
    /// left open is rolled back and session state the caller changed is reset (<see cref="KeepAliveOptions.SessionReset"/>).
    /// </summary>
    /// <param name="connection">A connection this pool handed out.</param>
    /// <param name="failure">The error the caller met on it, if any; a disconnect evicts the connection.</param>
    /// <exception cref="InvalidOperationException">The connection did not come from this pool or was already returned.</exception>
    public void Return(DbConnection connection, Exception? failure = null)
    {
        if (connection is null)
            throw new ArgumentNullException(nameof(connection));
        GiveBack(HandleOf(connection), failure, final: true);
    }

    /// <summary>
    /// Tells the pool about an error a caller met on a connection it still holds, for when the code that
    /// returns the connection never sees the error (an NHibernate session does not). A node error (1047,
    /// 1180, 1290) leaves that node at once; a disconnect evicts the connection when it comes back. Nothing
    /// is retried: the caller still has the error.
    /// </summary>
    /// <param name="connection">A connection on loan from this pool.</param>
    /// <param name="failure">The error.</param>
    public void ReportFailure(DbConnection connection, Exception failure)
    {
        if (connection is null)
            throw new ArgumentNullException(nameof(connection));
        if (failure is null)
            throw new ArgumentNullException(nameof(failure));
        if (connection is not KeepAliveConnection { Pooled: { } pooled } handle || handle.Pool != this || pooled.State != PooledConnectionState.Leased)
            return;
        pooled.ReportedFailure = failure;
        if (NodeHealth.Classify(failure) is { } unfit)
            LeaveHost(pooled.Host, unfit);
    }

    /// <summary>The pool that handed out <paramref name="connection"/>, if it is a <see cref="KeepAliveConnection"/>.</summary>
    /// <param name="connection">A connection.</param>
    /// <returns>Its pool, or null.</returns>
    public static KeepAlivePool? OwnerOf(DbConnection connection) => (connection as KeepAliveConnection)?.Pool;

    /// <summary>Whether <paramref name="connection"/> is a connection on loan from this pool.</summary>
    /// <param name="connection">A connection.</param>
    /// <returns>True if it is a handle of this pool that holds a connection.</returns>
    public bool Owns(DbConnection connection) =>
        connection is KeepAliveConnection { Pooled: { State: PooledConnectionState.Leased } } handle && handle.Pool == this;

    /// <summary>Closes every idle connection and makes the pool validate those in use when they come back (after a failover, say).</summary>
    public void Clear()
    {
        AdvanceGeneration("cleared by the application");
        foreach (var pooled in _registry.TakeAllIdle())
            Close(pooled, Eviction.Cleared());
    }

    /// <summary>A snapshot of the pool's state and counters.</summary>
    /// <returns>The snapshot.</returns>
    public PoolStatistics GetStatistics()
    {
        var (leased, idle, opening, checking) = _registry.Counts();
        return new PoolStatistics(leased, idle, opening, checking, Volatile.Read(ref _pending), _options.MaxPoolSize,
            Volatile.Read(ref _generation), Facts, _counters, _hosts.Snapshot(), Volatile.Read(ref _capabilities));
    }

    /// <summary>
    /// Shuts the pool down as HikariCP does: stops housekeeping (aborting a ping in progress), closes
    /// every idle connection at once, waits up to <see cref="KeepAliveOptions.ShutdownGracePeriod"/> for
    /// connections still on loan to come back (they are closed as they do), then closes those that
    /// did not, logging each one (with the stack that took it when leak detection is on).
    /// </summary>
    public void Dispose() => Shutdown(_options.ShutdownGracePeriod);

    /// <summary>Disposes the pool without a grace period: for the end of the app domain or process, when nobody will return anything.</summary>
    internal void Shutdown() => Shutdown(TimeSpan.Zero);

    /// <summary>A driver command bound to no connection yet (for a command created on a closed handle).</summary>
    internal DbCommand CreateDriverCommand() => _driver.CreateCommand();

    /// <summary>Whether a handle whose enlistment met a dead connection may enlist a live one instead (<see cref="DriverAdapter.EnlistsAgainAfterFailure"/>).</summary>
    internal bool EnlistsAgainAfterFailure => _driver.EnlistsAgainAfterFailure;

    private void Shutdown(TimeSpan grace)
    {
        Lifetime.PoolLifetime.Unregister(this);
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        var idle = _registry.TakeAllIdle();
        _watchdog.Stop();
        foreach (var pooled in idle)
            Close(pooled, Eviction.PoolDisposed("the pool was disposed"));
        StopHousekeeping();

        // Connections still out (on loan, being opened or checked) come back to a disposed pool and
        // are closed as they do; wait a bounded time for that, then close what is on loan.
        var now = Now;
        foreach (var pooled in _registry.WaitForEmpty(grace))
        {
            if (pooled.State != PooledConnectionState.Leased)
                continue; // Being opened or checked: it closes itself when that ends.
            PoolLog.ClosedAtShutdown(_logger, Name, pooled.Id, (now - pooled.LeasedAt).TotalSeconds, pooled.LeaseStack ?? "(stack not captured: enable leak detection to see it)", null);

            // Its holder may be in the middle of a command: Close must not wait on it.
            Close(pooled, Eviction.PoolDisposed("still on loan when the pool shut down", abortSocket: true));
        }

        _watchdog.Dispose();
        _metrics.Dispose();
    }

    /// <summary>The handle <paramref name="connection"/> is, if it is one of this pool's.</summary>
    private KeepAliveConnection HandleOf(DbConnection connection) =>
        connection is KeepAliveConnection handle && handle.Pool == this
            ? handle
            : throw new InvalidOperationException($"This connection did not come from pool '{Name}': it came from another pool or from the driver itself.");

    /// <summary>What a caller gets when the connection timeout passed: the pool's state, and why nothing came (every connection in use, or the server full).</summary>
    private PoolTimeoutException TimeoutError(ServerFull? full = null)
    {
        var statistics = GetStatistics();
        _counters.TimeOut();
        PoolLog.PoolTimeout(_logger, Name, statistics.ToString(), null);
        var why = full is null
            ? $"Every connection is in use: return connections sooner (enable {KeepAliveProperties.LeakDetectionThreshold} to find ones never returned), " +
              $"raise {KeepAliveProperties.MaxPoolSize}, or raise {KeepAliveProperties.ConnectionTimeout}."
            : $"The server refuses new connections ({full.Words}) while the pool holds {full.Ceiling}, and none came back in time. " +
              "Raise the server's limit (max_connections, or the account's max_user_connections), lower the pool's maximum to the limit, or return connections sooner.";
        return new PoolTimeoutException($"Timed out after {PoolSettings.Show(_options.ConnectionTimeout)} waiting for a connection from pool '{Name}' ({statistics}). {why}")
        {
            Statistics = statistics,
        };
    }

    private double NextRandom()
    {
        lock (_random)
            return _random.NextDouble();
    }

    private void ThrowIfDisposed()
    {
        if (IsDisposed)
            throw new ObjectDisposedException(nameof(KeepAlivePool), $"Pool '{Name}' has been disposed.");
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
