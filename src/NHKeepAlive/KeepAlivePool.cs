using System;
using System.Collections.Generic;
using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using NHKeepAlive.Diagnostics;
using NHKeepAlive.Drivers;

namespace NHKeepAlive;

/// <summary>
/// A health-aware pool of MySQL/MariaDB connections. It hands out only connections that are alive:
/// one idle past the validation bypass window is pinged first (bounded by the validation timeout),
/// one past its max lifetime is retired, a single background timer pings every idle connection
/// before the server's <c>wait_timeout</c> or a middlebox can drop it, and a connection that comes
/// back broken is evicted and makes the pool validate every idle connection older than the failure.
/// Thread-safe; sync and async checkouts share one code path.
/// </summary>
public sealed class KeepAlivePool : IDisposable
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> the pools publish their instruments on.</summary>
    public const string MeterName = "NHKeepAlive";

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<DbConnection, KeepAlivePool> s_owners = new();

    private static readonly TimeSpan s_maxHousekeepingPeriod = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_minHousekeepingPeriod = TimeSpan.FromMilliseconds(50);

    private readonly PoolSettings _settings;
    private readonly DriverAdapter _driver;
    private readonly TimeProvider _time;
    private readonly long _startTimestamp;
    private readonly ILogger _logger;
    private readonly PoolMetrics _metrics;
    private readonly Random _random;
    private readonly object _lock = new();

    // Idle connections, most recently returned last (checkout takes from the end: LIFO keeps a few
    // connections hot and lets the rest reach the idle timeout).
    private readonly List<PooledConnection> _idle = [];
    private readonly Dictionary<object, PooledConnection> _all = new(ReferenceComparer.Instance);

    // One slot per connection that is out of the idle list (with a caller, being opened, or being
    // pinged). Idle + out never exceeds MaxPoolSize.
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly ITimer? _timer;

    private int _pending;
    private int _leased;
    private int _generation;
    private int _nextId;
    private int _disposed;
    private long _created;
    private long _evicted;
    private long _validations;
    private long _validationFailures;
    private long _keepAlivePings;
    private long _reopened;
    private int _waitTimeoutGeneration = -1;
    private TimeSpan? _waitTimeout;
    private TimeSpan? _keepAliveInterval;
    private TimeSpan _bypassWindow;
    private Task _housekeeping = Task.CompletedTask;
    private int _housekeepingRunning;

    /// <summary>Builds a pool. Nothing is opened until the first checkout (or the first refill of <see cref="KeepAliveOptions.MinIdle"/>).</summary>
    /// <param name="options">The options; checked now and copied.</param>
    /// <exception cref="KeepAliveConfigurationException">An option or the connection string is not valid, or no driver is referenced.</exception>
    public KeepAlivePool(KeepAliveOptions options)
        : this(PoolSettings.Create(options), new Random())
    {
    }

    internal KeepAlivePool(PoolSettings settings, Random random)
    {
        _settings = settings;
        _driver = settings.Driver;
        _time = settings.TimeProvider;
        _random = random;
        _startTimestamp = _time.GetTimestamp();
        _logger = settings.LoggerFactory.CreateLogger("NHKeepAlive.Pool");
        _slots = new SemaphoreSlim(settings.MaxPoolSize, settings.MaxPoolSize);
        _keepAliveInterval = settings.KeepAliveInterval > TimeSpan.Zero ? settings.KeepAliveInterval : null;
        _bypassWindow = BypassWindowFor(_keepAliveInterval, null);
        _metrics = new PoolMetrics(settings.PoolName, GetStatistics);
        if (NeedsHousekeeping)
            _timer = _time.CreateTimer(static s => ((KeepAlivePool)s!).OnTimer(), this, HousekeepingPeriod, Timeout.InfiniteTimeSpan);
        Hosting.PoolLifetime.Register(this);
    }

    /// <summary>The pool's name, as logs and metrics show it.</summary>
    public string Name => _settings.PoolName;

    /// <summary>The driver the pool opens connections with: MySql.Data or MySqlConnector.</summary>
    public string DriverName => _driver.Name;

    /// <summary>The housekeeping run in progress or last finished (tests wait on it).</summary>
    internal Task HousekeepingTask => Volatile.Read(ref _housekeeping);

    private TimeSpan Now => _time.GetElapsedTime(_startTimestamp);

    private bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    private bool NeedsHousekeeping =>
        _settings.KeepAliveInterval > TimeSpan.Zero || _settings.IdleTimeout > TimeSpan.Zero || _settings.MaxLifetime > TimeSpan.Zero
        || _settings.MinIdle > 0 || _settings.LeakDetectionThreshold > TimeSpan.Zero;

    /// <summary>How often the housekeeping timer runs: a quarter of the keepalive interval, at most 30 s.</summary>
    internal TimeSpan HousekeepingPeriod
    {
        get
        {
            var period = s_maxHousekeepingPeriod;
            if (_keepAliveInterval is { } interval)
                period = Min(period, TimeSpan.FromTicks(interval.Ticks / 4));
            if (_settings.LeakDetectionThreshold > TimeSpan.Zero)
                period = Min(period, TimeSpan.FromTicks(_settings.LeakDetectionThreshold.Ticks / 2));
            if (_settings.IdleTimeout > TimeSpan.Zero)
                period = Min(period, TimeSpan.FromTicks(_settings.IdleTimeout.Ticks / 2));
            return period < s_minHousekeepingPeriod ? s_minHousekeepingPeriod : period;
        }
    }

    /// <summary>Takes an open, validated connection; give it back with <see cref="Return"/>.</summary>
    /// <returns>The driver's own connection object, open.</returns>
    /// <exception cref="PoolTimeoutException">No connection came free within the connection timeout.</exception>
    /// <exception cref="ConnectException">A new connection could not be opened.</exception>
    /// <exception cref="ObjectDisposedException">The pool is disposed.</exception>
    public DbConnection Rent()
    {
        // With async: false every await inside completes synchronously, so the ValueTask is done.
#pragma warning disable CA2012
        return AcquireAsync(async: false, CancellationToken.None).GetAwaiter().GetResult().Connection;
#pragma warning restore CA2012
    }

    /// <summary>Takes an open, validated connection without blocking a thread; give it back with <see cref="Return"/>.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The driver's own connection object, open.</returns>
    /// <exception cref="PoolTimeoutException">No connection came free within the connection timeout.</exception>
    /// <exception cref="ConnectException">A new connection could not be opened.</exception>
    public async Task<DbConnection> RentAsync(CancellationToken cancellationToken = default) =>
        (await AcquireAsync(async: true, cancellationToken).ConfigureAwait(false)).Connection;

    /// <summary>Takes a connection wrapped in a lease that returns it when disposed.</summary>
    /// <returns>The lease.</returns>
    public ConnectionLease Lease() => new(this, Rent());

    /// <summary>Takes a connection wrapped in a lease that returns it when disposed.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The lease.</returns>
    public async Task<ConnectionLease> LeaseAsync(CancellationToken cancellationToken = default) =>
        new(this, await RentAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Gives a connection back. A connection that the driver closed after an error, or that
    /// <paramref name="failure"/> shows is gone, is evicted; a transaction left open is rolled back.
    /// </summary>
    /// <param name="connection">A connection this pool handed out.</param>
    /// <param name="failure">The error the caller met on it, if any; a disconnect evicts the connection.</param>
    /// <exception cref="InvalidOperationException">The connection did not come from this pool or was already returned.</exception>
    public void Return(DbConnection connection, Exception? failure = null)
    {
        if (connection is null)
            throw new ArgumentNullException(nameof(connection));
        PooledConnection pooled;
        lock (_lock)
        {
            if (!_all.TryGetValue(connection, out pooled!) || !pooled.IsLeased)
            {
                throw new InvalidOperationException(
                    $"This connection is not out on loan from pool '{Name}': it was returned already, or it came from another pool or from the driver itself.");
            }

            pooled.IsLeased = false;
            pooled.LeaseStack = null;
            _leased--;
        }

        try
        {
            var (reason, detail) = CleanForReuse(pooled, failure);
            if (reason is { } evict)
            {
                Evict(pooled, evict, detail!);
                return;
            }

            var now = Now;
            pooled.LastUsed = now;
            pooled.LastAlive = now;
            lock (_lock)
                _idle.Add(pooled);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>The pool that handed out <paramref name="connection"/>, if it came from one.</summary>
    /// <param name="connection">A connection.</param>
    /// <returns>Its pool, or null.</returns>
    public static KeepAlivePool? OwnerOf(DbConnection connection) =>
        connection is not null && s_owners.TryGetValue(connection, out var pool) ? pool : null;

    /// <summary>Whether <paramref name="connection"/> is one of this pool's connections.</summary>
    /// <param name="connection">A connection.</param>
    /// <returns>True if this pool opened it and has not closed it.</returns>
    public bool Owns(DbConnection connection)
    {
        lock (_lock)
            return connection is not null && _all.ContainsKey(connection);
    }

    /// <summary>
    /// Protects a connection that a caller holds for a long time (an NHibernate session with
    /// <c>connection.release_mode=on_close</c>, say): call it before each command. A connection
    /// active within the bypass window costs nothing; an older one is pinged (bounded by the
    /// validation timeout), and if it is dead it is reopened in place, on the same object, so the
    /// caller's next command runs. A reopen loses the session's server-side state: session
    /// variables, temporary tables, user locks, prepared statements, <c>LAST_INSERT_ID()</c>.
    /// </summary>
    /// <param name="connection">A connection this pool handed out and the caller still holds.</param>
    /// <param name="inTransaction">Whether the caller has a transaction open on it.</param>
    /// <returns>True if the connection had to be reopened.</returns>
    /// <exception cref="ConnectionLostException">The connection is dead and a transaction was open on it: it is not reopened.</exception>
    /// <exception cref="ConnectException">The connection is dead and could not be reopened.</exception>
    /// <exception cref="InvalidOperationException">The connection is not on loan from this pool.</exception>
    public bool EnsureAlive(DbConnection connection, bool inTransaction)
    {
        if (connection is null)
            throw new ArgumentNullException(nameof(connection));
        PooledConnection pooled;
        int generation;
        lock (_lock)
        {
            if (!_all.TryGetValue(connection, out pooled!) || !pooled.IsLeased)
                throw new InvalidOperationException($"This connection is not on loan from pool '{Name}'.");
            generation = _generation;
        }

        var now = Now;
        var idle = now - pooled.LastAlive;
        if (connection.State == ConnectionState.Open && !NeedsValidation(pooled, now, generation, _bypassWindow))
        {
            pooled.LastAlive = now;
            return false;
        }

        // The driver's state tells a broken connection without a round trip.
        var outcome = connection.State == ConnectionState.Open
#pragma warning disable CA2012 // Synchronous: the ValueTask has completed.
            ? PingAsync(pooled, _settings.ValidationTimeout, async: false, CancellationToken.None).GetAwaiter().GetResult()
#pragma warning restore CA2012
            : PingOutcome.Failed;
        if (RecordValidation(pooled, outcome, generation))
            return false;

        AdvanceGeneration($"held connection {pooled.Id} was found dead after {PoolSettings.Show(idle)} idle");
        if (inTransaction || _driver.IsInTransaction(connection) == true)
        {
            throw new ConnectionLostException(
                $"The connection (pool '{Name}', connection {pooled.Id}) died after {PoolSettings.Show(idle)} idle while a transaction was open on it. " +
                "The server rolled the transaction back: nothing of it was committed, and it was not reopened, as that would silently drop the transaction's earlier statements. Begin a new transaction and run it again.");
        }

        Reopen(pooled, outcome == PingOutcome.Timeout ? "no answer to validation" : "found dead", idle);
        return true;
    }

    /// <summary>Closes every idle connection and makes the pool validate those in use when they come back (after a failover, say).</summary>
    public void Clear()
    {
        AdvanceGeneration("cleared by the application");
        List<PooledConnection> idle;
        lock (_lock)
        {
            idle = [.. _idle];
            _idle.Clear();
        }

        foreach (var pooled in idle)
            Evict(pooled, EvictionReason.Cleared, "the pool was cleared");
    }

    /// <summary>A snapshot of the pool's state and counters.</summary>
    /// <returns>The snapshot.</returns>
    public PoolStatistics GetStatistics()
    {
        lock (_lock)
        {
            return new PoolStatistics(
                _leased, _idle.Count, Volatile.Read(ref _pending), _settings.MaxPoolSize, _generation,
                _keepAliveInterval, _waitTimeout, Interlocked.Read(ref _created), Interlocked.Read(ref _evicted),
                Interlocked.Read(ref _validations), Interlocked.Read(ref _validationFailures), Interlocked.Read(ref _keepAlivePings))
            {
                Reopened = Interlocked.Read(ref _reopened),
            };
        }
    }

    /// <summary>
    /// Stops the keepalive timer (waiting for a run in progress, whose ping is aborted), closes every
    /// idle connection, and closes connections still in use when they are returned.
    /// </summary>
    public void Dispose()
    {
        Hosting.PoolLifetime.Unregister(this);
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _shutdown.Cancel();
        _timer?.Dispose();
        try
        {
            _housekeeping.Wait(_settings.ValidationTimeout + TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
            // Logged where it happened.
        }

        List<PooledConnection> idle;
        lock (_lock)
        {
            idle = [.. _idle];
            _idle.Clear();
        }

        foreach (var pooled in idle)
            Evict(pooled, EvictionReason.PoolDisposed, "the pool was disposed");
        _metrics.Dispose();
    }

    /// <summary>
    /// Disposes the pool and also closes the connections callers still hold: for the end of the app
    /// domain or process, when nobody will return them.
    /// </summary>
    internal void Shutdown()
    {
        Dispose();
        List<PooledConnection> leased;
        lock (_lock)
            leased = [.. _all.Values];
        foreach (var pooled in leased)
            Evict(pooled, EvictionReason.PoolDisposed, "closed at shutdown while still in use");
    }

    // ---- checkout ---------------------------------------------------------------------------

    private async ValueTask<PooledConnection> AcquireAsync(bool async, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        var started = _time.GetTimestamp();
        Interlocked.Increment(ref _pending);
        bool gotSlot;
        try
        {
            gotSlot = async
                ? await _slots.WaitAsync(_settings.ConnectionTimeout, cancellationToken).ConfigureAwait(false)
                : _slots.Wait(_settings.ConnectionTimeout, cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _pending);
        }

        if (!gotSlot)
            throw TimeoutError();
        try
        {
            ThrowIfDisposed();
            var pooled = await TakeHealthyAsync(async, cancellationToken).ConfigureAwait(false);
            var now = Now;
            lock (_lock)
            {
                pooled.IsLeased = true;
                pooled.LeasedAt = now;
                pooled.LeakReported = false;
                _leased++;
            }

            if (_settings.LeakDetectionThreshold > TimeSpan.Zero)
                pooled.LeaseStack = new StackTrace(1, true).ToString();
            _metrics.Acquired(_time.GetElapsedTime(started));
            return pooled;
        }
        catch
        {
            _slots.Release();
            throw;
        }
    }

    /// <summary>
    /// Takes idle connections, newest first, until one is fit to hand out; opens a new one when none
    /// is. Validation spends at most one validation timeout per checkout: after that the caller gets
    /// a new connection rather than another ping (a blackholed path would time out every one).
    /// </summary>
    private async ValueTask<PooledConnection> TakeHealthyAsync(bool async, CancellationToken cancellationToken)
    {
        var budget = _settings.ValidationTimeout;
        while (budget > TimeSpan.Zero)
        {
            PooledConnection? pooled;
            int generation;
            lock (_lock)
            {
                pooled = _idle.Count == 0 ? null : _idle[_idle.Count - 1];
                if (pooled is not null)
                    _idle.RemoveAt(_idle.Count - 1);
                generation = _generation;
            }

            if (pooled is null)
                break;
            var now = Now;
            if (pooled.IsExpired(now))
            {
                Evict(pooled, EvictionReason.MaxLifetime, LifetimeDetail(pooled, now));
                continue;
            }

            if (!NeedsValidation(pooled, now, generation, _bypassWindow))
                return pooled;

            var pingStarted = _time.GetTimestamp();
            var outcome = await PingAsync(pooled, budget, async, cancellationToken).ConfigureAwait(false);
            budget -= _time.GetElapsedTime(pingStarted);
            if (RecordValidation(pooled, outcome, generation))
                return pooled;

            var idleFor = PoolSettings.Show(now - pooled.LastAlive);
            if (outcome == PingOutcome.Timeout)
            {
                Evict(pooled, EvictionReason.ValidationTimedOut, $"no answer to validation within {PoolSettings.Show(_settings.ValidationTimeout)} after {idleFor} idle; the socket was aborted");
                AdvanceGeneration($"connection {pooled.Id} timed out on validation");
                break;
            }

            Evict(pooled, EvictionReason.ValidationFailed, $"dead on validation after {idleFor} idle");
            AdvanceGeneration($"connection {pooled.Id} was found dead on checkout");
            cancellationToken.ThrowIfCancellationRequested();
        }

        return await CreateAsync(async, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether a checkout must validate this connection first.</summary>
    internal static bool NeedsValidation(PooledConnection pooled, TimeSpan now, int generation, TimeSpan bypassWindow) =>
        pooled.Generation != generation || now - pooled.LastAlive > bypassWindow;

    private async ValueTask<PooledConnection> CreateAsync(bool async, CancellationToken cancellationToken)
    {
        var connection = _driver.CreateConnection(_settings.ConnectionString);
        try
        {
            if (async)
                await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            else
                connection.Open();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            connection.Dispose();
            throw ConnectException.From(e, Name);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        int generation;
        lock (_lock)
            generation = _generation;
        if (generation != Volatile.Read(ref _waitTimeoutGeneration))
            await LearnWaitTimeoutAsync(connection, generation, async, cancellationToken).ConfigureAwait(false);

        var now = Now;
        var id = Interlocked.Increment(ref _nextId);
        var pooled = new PooledConnection(id, connection, now, ExpiryFrom(now), generation, _driver.ServerThreadId(connection))
        {
            Database = connection.Database,
        };
        lock (_lock)
            _all.Add(connection, pooled);
        s_owners.Add(connection, this);
        Interlocked.Increment(ref _created);
        _metrics.Created();
        PoolLog.ConnectionOpened(_logger, Name, id, _driver.Name, pooled.ServerThreadId, null);
        return pooled;
    }

    /// <summary>When a connection created at <paramref name="createdAt"/> retires: the max lifetime less up to 2.5 % of it, so that connections opened together do not retire together.</summary>
    internal static TimeSpan LifetimeExpiry(TimeSpan createdAt, TimeSpan maxLifetime, double random01) =>
        createdAt + maxLifetime - TimeSpan.FromTicks((long)(maxLifetime.Ticks * PoolSettings.LifetimeJitterFraction * random01));

    /// <summary>When a connection opened now retires; null without a max lifetime.</summary>
    private TimeSpan? ExpiryFrom(TimeSpan now) =>
        _settings.MaxLifetime > TimeSpan.Zero ? LifetimeExpiry(now, _settings.MaxLifetime, NextRandom()) : null;

    private static string LifetimeDetail(PooledConnection pooled, TimeSpan now) =>
        $"reached its max lifetime ({PoolSettings.Show(now - pooled.CreatedAt)} old)";

    /// <summary>Counts a validation and, when the connection answered, records it alive in this generation.</summary>
    private bool RecordValidation(PooledConnection pooled, PingOutcome outcome, int generation)
    {
        Interlocked.Increment(ref _validations);
        _metrics.Validated(outcome.ToString().ToLowerInvariant());
        if (outcome != PingOutcome.Ok)
        {
            Interlocked.Increment(ref _validationFailures);
            return false;
        }

        pooled.LastAlive = Now;
        pooled.Generation = generation;
        return true;
    }

    /// <summary>The keepalive interval for a server wait_timeout: half of it, capped by the configured interval, never under 250 ms.</summary>
    internal static TimeSpan? KeepAliveIntervalFor(TimeSpan configured, TimeSpan? serverWaitTimeout)
    {
        if (configured <= TimeSpan.Zero)
            return null;
        if (serverWaitTimeout is not { } wait || wait <= TimeSpan.Zero)
            return configured;
        var half = TimeSpan.FromTicks(wait.Ticks / 2);
        var interval = half < configured ? half : configured;
        return interval < PoolSettings.MinimumKeepAliveInterval ? PoolSettings.MinimumKeepAliveInterval : interval;
    }

    private TimeSpan BypassWindowFor(TimeSpan? keepAliveInterval, TimeSpan? serverWaitTimeout)
    {
        // The window must stay well inside the time a connection can idle safely, however short the
        // server's wait_timeout is.
        var window = _settings.ValidationBypassWindow;
        if (keepAliveInterval is { } interval)
            window = Min(window, TimeSpan.FromTicks(interval.Ticks / 2));
        if (serverWaitTimeout is { } wait && wait > TimeSpan.Zero)
            window = Min(window, TimeSpan.FromTicks(wait.Ticks / 4));
        return window;
    }

    private async ValueTask LearnWaitTimeoutAsync(DbConnection connection, int generation, bool async, CancellationToken cancellationToken)
    {
        TimeSpan? waitTimeout = null;
        try
        {
            waitTimeout = await _driver.ReadWaitTimeoutAsync(connection, _settings.ValidationTimeout, async, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DbException or InvalidCastException or FormatException or NotSupportedException or InvalidOperationException)
        {
            PoolLog.WaitTimeoutUnknown(_logger, Name, e.Message, e);
        }

        TimeSpan? interval;
        lock (_lock)
        {
            _waitTimeoutGeneration = generation;
            if (waitTimeout is null)
                return;
            _waitTimeout = waitTimeout;
            interval = KeepAliveIntervalFor(_settings.KeepAliveInterval, waitTimeout);
            _keepAliveInterval = interval;
            _bypassWindow = BypassWindowFor(interval, waitTimeout);
        }

        PoolLog.KeepAliveIntervalChosen(_logger, Name, waitTimeout.Value.TotalSeconds, interval?.TotalSeconds ?? 0, null);
        RescheduleHousekeeping();
    }

    // ---- return ---------------------------------------------------------------------------------

    /// <summary>Makes a returned connection fit for the next caller, or says why it must go.</summary>
    private (EvictionReason? Reason, string? Detail) CleanForReuse(PooledConnection pooled, Exception? failure)
    {
        var connection = pooled.Connection;
        if (failure is not null && DisconnectClassifier.Classify(failure) is { } disconnect)
        {
            AdvanceGeneration($"connection {pooled.Id}: {disconnect}");
            return (EvictionReason.Disconnected, disconnect);
        }

        if (connection.State != ConnectionState.Open)
        {
            AdvanceGeneration($"connection {pooled.Id} came back {connection.State}");
            return (EvictionReason.Broken, $"came back {connection.State}: the driver closes a connection after a fatal error");
        }

        if (IsDisposed)
            return (EvictionReason.PoolDisposed, "returned after the pool was disposed");
        var now = Now;
        if (pooled.IsExpired(now))
            return (EvictionReason.MaxLifetime, LifetimeDetail(pooled, now));

        try
        {
            // The driver tells from its own state whether a transaction is open, so the common
            // case costs no round trip; when it cannot tell, roll back anyway.
            var inTransaction = _driver.IsInTransaction(connection);
            if (inTransaction != false)
            {
                _driver.RollBack(connection);
                if (inTransaction == true)
                    PoolLog.TransactionRolledBack(_logger, Name, pooled.Id, null);
            }

            if (pooled.Database is { Length: > 0 } database && !string.Equals(connection.Database, database, StringComparison.Ordinal))
                connection.ChangeDatabase(database);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or System.IO.IOException or System.Net.Sockets.SocketException)
        {
            return (EvictionReason.CleanupFailed, $"could not roll back or restore its session for the next caller: {e.Message}");
        }

        return (null, null);
    }

    // ---- housekeeping -----------------------------------------------------------------------

    private void OnTimer()
    {
        // The timer is one-shot and re-armed when a run has finished; the flag also covers a
        // re-arm from elsewhere (a new wait_timeout) landing while a run is in progress.
        if (IsDisposed || Interlocked.Exchange(ref _housekeepingRunning, 1) != 0)
            return;
        _housekeeping = RunHousekeepingAsync();
    }

    private async Task RunHousekeepingAsync()
    {
        try
        {
            await HousekeepAsync(_shutdown.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_shutdown.IsCancellationRequested)
        {
            // Disposed mid-run.
        }
        catch (Exception e)
        {
            PoolLog.HousekeepingFailed(_logger, Name, e);
        }
        finally
        {
            Volatile.Write(ref _housekeepingRunning, 0);
            RescheduleHousekeeping();
        }
    }

    private void RescheduleHousekeeping()
    {
        if (IsDisposed || _timer is null)
            return;
        try
        {
            _timer.Change(HousekeepingPeriod, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile.
        }
    }

    /// <summary>One housekeeping run: retire, keep alive, report leaks, refill the minimum.</summary>
    internal async Task HousekeepAsync(CancellationToken cancellationToken)
    {
        RetireIdle();
        ReportLeaks();
        await KeepAliveAsync(cancellationToken).ConfigureAwait(false);
        await RefillMinIdleAsync(cancellationToken).ConfigureAwait(false);
    }

    private void RetireIdle()
    {
        var now = Now;
        var retired = new List<(PooledConnection Connection, EvictionReason Reason, string Detail)>();
        lock (_lock)
        {
            // Oldest first; stop taking idle-timed-out connections at the minimum.
            for (var i = 0; i < _idle.Count; i++)
            {
                var pooled = _idle[i];
                if (pooled.IsExpired(now))
                {
                    retired.Add((pooled, EvictionReason.MaxLifetime, LifetimeDetail(pooled, now)));
                }
                else if (_settings.IdleTimeout > TimeSpan.Zero && now - pooled.LastUsed >= _settings.IdleTimeout && _all.Count - retired.Count > _settings.MinIdle)
                {
                    retired.Add((pooled, EvictionReason.IdleTimeout, $"idle for {PoolSettings.Show(now - pooled.LastUsed)}"));
                }
                else
                {
                    continue;
                }

                _idle.RemoveAt(i--);
            }
        }

        foreach (var (pooled, reason, detail) in retired)
            Evict(pooled, reason, detail);
    }

    private void ReportLeaks()
    {
        if (_settings.LeakDetectionThreshold <= TimeSpan.Zero)
            return;
        var now = Now;
        List<PooledConnection> leaked = [];
        lock (_lock)
        {
            foreach (var pooled in _all.Values)
            {
                if (pooled.IsLeased && !pooled.LeakReported && now - pooled.LeasedAt >= _settings.LeakDetectionThreshold)
                {
                    pooled.LeakReported = true;
                    leaked.Add(pooled);
                }
            }
        }

        foreach (var pooled in leaked)
            PoolLog.LeakSuspected(_logger, Name, pooled.Id, (now - pooled.LeasedAt).TotalSeconds, pooled.LeaseStack ?? "(stack not captured)", null);
    }

    /// <summary>Pings, one at a time, every idle connection that has idled a keepalive interval or predates the current generation.</summary>
    private async Task KeepAliveAsync(CancellationToken cancellationToken)
    {
        if (_keepAliveInterval is not { } interval)
            return;
        var now = Now;
        List<PooledConnection> due;
        int generation;
        lock (_lock)
        {
            generation = _generation;
            due = _idle.FindAll(p => p.Generation != generation || now - p.LastAlive >= interval);
        }

        foreach (var pooled in due)
        {
            cancellationToken.ThrowIfCancellationRequested();

            // A slot, so that a connection out for its ping still counts against MaxPoolSize. If
            // none is free, every connection is busy and nothing idles long enough to need a ping.
            if (!_slots.Wait(0, cancellationToken))
                return;
            try
            {
                lock (_lock)
                {
                    if (!_idle.Remove(pooled))
                        continue; // A caller took it meanwhile: its checkout validates it.
                }

                var outcome = await PingAsync(pooled, _settings.ValidationTimeout, async: true, cancellationToken).ConfigureAwait(false);
                PoolLog.KeepAlivePinged(_logger, Name, pooled.Id, (now - pooled.LastAlive).TotalSeconds, outcome.ToString(), null);
                Interlocked.Increment(ref _keepAlivePings);
                _metrics.KeepAlivePinged(outcome.ToString().ToLowerInvariant());
                if (outcome == PingOutcome.Ok)
                {
                    pooled.LastAlive = Now;
                    pooled.Generation = generation;
                    lock (_lock)
                    {
                        if (!IsDisposed)
                        {
                            _idle.Insert(0, pooled);
                            continue;
                        }
                    }

                    Evict(pooled, EvictionReason.PoolDisposed, "the pool was disposed");
                    continue;
                }

                var detail = outcome == PingOutcome.Timeout
                    ? $"no answer to the keepalive ping within {PoolSettings.Show(_settings.ValidationTimeout)}; the socket was aborted"
                    : $"dead on the keepalive ping after {PoolSettings.Show(now - pooled.LastAlive)} idle";
                Evict(pooled, EvictionReason.KeepAliveFailed, detail);
                AdvanceGeneration($"connection {pooled.Id} failed its keepalive ping");
            }
            finally
            {
                _slots.Release();
            }
        }
    }

    private async Task RefillMinIdleAsync(CancellationToken cancellationToken)
    {
        while (!IsDisposed)
        {
            lock (_lock)
            {
                if (_all.Count >= _settings.MinIdle)
                    return;
            }

            if (!_slots.Wait(0, cancellationToken))
                return;
            try
            {
                var pooled = await CreateAsync(async: true, cancellationToken).ConfigureAwait(false);
                lock (_lock)
                    _idle.Insert(0, pooled);
            }
            catch (Exception e) when (e is ConnectException or DbException or TimeoutException)
            {
                PoolLog.MinIdleRefillFailed(_logger, Name, e);
                return;
            }
            finally
            {
                _slots.Release();
            }
        }
    }

    // ---- shared -------------------------------------------------------------------------------

    private enum PingOutcome
    {
        Ok,
        Failed,
        Timeout,
    }

    /// <summary>
    /// Pings a connection that nobody else holds, bounded by <paramref name="timeout"/>: when it
    /// expires (or the caller cancels, or the pool is disposed) the socket under the driver is
    /// closed, which ends a ping that a blackholed path would otherwise hold for minutes.
    /// </summary>
    private async ValueTask<PingOutcome> PingAsync(PooledConnection pooled, TimeSpan timeout, bool async, CancellationToken cancellationToken)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _shutdown.Token);
        bound.CancelAfter(timeout);
        bool alive;
        using (bound.Token.Register(() => _driver.Abort(pooled.Connection)))
        {
            alive = _settings.ValidationQuery is { } query
                ? await RunValidationQueryAsync(pooled.Connection, query, timeout, async, bound.Token).ConfigureAwait(false)
                : await _driver.PingAsync(pooled.Connection, async, bound.Token).ConfigureAwait(false);
        }

        if (alive && pooled.Connection.State == ConnectionState.Open && !bound.IsCancellationRequested)
            return PingOutcome.Ok;
        if (cancellationToken.IsCancellationRequested)
        {
            Evict(pooled, EvictionReason.ValidationTimedOut, "the caller cancelled its checkout during validation; the socket was aborted");
            cancellationToken.ThrowIfCancellationRequested();
        }

        return bound.IsCancellationRequested ? PingOutcome.Timeout : PingOutcome.Failed;
    }

    private static async ValueTask<bool> RunValidationQueryAsync(DbConnection connection, string query, TimeSpan timeout, bool async, CancellationToken cancellationToken)
    {
        try
        {
            using var command = connection.CreateCommand();
            command.CommandText = query;
            command.CommandTimeout = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds));
            if (async)
                await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            else
                command.ExecuteScalar();
            return true;
        }
#pragma warning disable CA1031 // Any failure of the validation query means the connection is not fit to hand out.
        catch (Exception)
#pragma warning restore CA1031
        {
            return false;
        }
    }

    /// <summary>Opens a held connection's object again on a new physical connection.</summary>
    private void Reopen(PooledConnection pooled, string why, TimeSpan idle)
    {
        var connection = pooled.Connection;
        try
        {
            connection.Close();
        }
#pragma warning disable CA1031 // Closing a dead connection may fail in any way the driver likes; it is gone either way.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        try
        {
            // The driver dropped the password from ConnectionString when it first opened.
            connection.ConnectionString = _settings.ConnectionString;
            connection.Open();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw ConnectException.From(e, Name);
        }

        var now = Now;
        int generation;
        lock (_lock)
            generation = _generation;
        pooled.Renew(now, ExpiryFrom(now), generation, _driver.ServerThreadId(connection));
        pooled.Database = connection.Database;
        Interlocked.Increment(ref _reopened);
        Interlocked.Increment(ref _created);
        _metrics.Created();
        PoolLog.ConnectionReopened(_logger, Name, pooled.Id, why, idle.TotalSeconds, null);
    }

    /// <summary>Closes a connection that is out of the idle list and no caller holds, and forgets it.</summary>
    private void Evict(PooledConnection pooled, EvictionReason reason, string detail)
    {
        lock (_lock)
        {
            if (!_all.Remove(pooled.Connection))
                return;
            if (pooled.IsLeased)
            {
                pooled.IsLeased = false;
                _leased--;
            }
        }

        s_owners.Remove(pooled.Connection);
        Interlocked.Increment(ref _evicted);
        _metrics.Evicted(reason);
        PoolLog.ConnectionEvicted(_logger, Name, pooled.Id, reason, detail, null);
        try
        {
            if (reason is EvictionReason.ValidationTimedOut or EvictionReason.KeepAliveFailed)
                _driver.Abort(pooled.Connection); // Never let Close wait on a dead socket.
            pooled.Connection.Dispose();
        }
#pragma warning disable CA1031 // Closing a dead connection may fail in any way the driver likes; it is gone either way.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private void AdvanceGeneration(string detail)
    {
        int generation;
        lock (_lock)
            generation = ++_generation;
        PoolLog.GenerationAdvanced(_logger, Name, generation, detail, null);
    }

    private PoolTimeoutException TimeoutError()
    {
        var statistics = GetStatistics();
        _metrics.TimedOut();
        PoolLog.PoolTimeout(_logger, Name, statistics.ToString(), null);
        return new PoolTimeoutException(
            $"Timed out after {PoolSettings.Show(_settings.ConnectionTimeout)} waiting for a connection from pool '{Name}' ({statistics}). " +
            $"Every connection is in use: return connections sooner (enable {KeepAliveProperties.LeakDetectionThreshold} to find ones never returned), " +
            $"raise {KeepAliveProperties.MaxPoolSize}, or raise {KeepAliveProperties.ConnectionTimeout}.")
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
