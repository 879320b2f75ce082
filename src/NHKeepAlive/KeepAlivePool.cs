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
/// each one's socket is checked without a round trip (a connection the server or a proxy closed is
/// found at once), one idle past the validation bypass window is also pinged (bounded by the
/// validation timeout), one past its max lifetime is retired, a housekeeping thread pings every idle
/// connection before the server's <c>wait_timeout</c> or a middlebox can drop it, and a connection
/// that comes back broken is evicted and makes the pool validate every idle connection older than the
/// failure. Every physical connection is in exactly one <see cref="PooledConnectionState"/> at every
/// moment and is closed exactly once. Thread-safe; sync and async checkouts share one code path.
/// </summary>
public sealed partial class KeepAlivePool : IDisposable
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> the pools publish their instruments on.</summary>
    public const string MeterName = "NHKeepAlive";

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<DbConnection, KeepAlivePool> s_owners = new();

    private static readonly TimeSpan s_maxHousekeepingPeriod = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_minHousekeepingPeriod = TimeSpan.FromMilliseconds(50);

    /// <summary>How many idle connections the keepalive takes out at once to ping on the wire (see <see cref="KeepAlive"/>).</summary>
    private const int KeepAliveBatch = 32;

    private readonly PoolSettings _settings;
    private readonly KeepAliveOptions _options;
    private readonly DriverAdapter _driver;
    private readonly TimeProvider _time;
    private readonly long _startTimestamp;
    private readonly ILogger _logger;
    private readonly PoolCounters _counters = new();
    private readonly PoolMetrics _metrics;
    private readonly Random _random;
    private readonly object _lock = new();

    // Idle connections, most recently returned last (checkout takes from the end: LIFO keeps a few
    // connections hot and lets the rest reach the idle timeout).
    private readonly List<PooledConnection> _idle = [];

    // Every connection that is not Closed, and how many are in each state.
    private readonly Dictionary<object, PooledConnection> _all = new(ReferenceComparer.Instance);
    private readonly int[] _inState = new int[6];

    // One slot per connection that is out of the idle list (with a caller, being opened, or being
    // checked). Idle + out never exceeds MaxPoolSize.
    private readonly SemaphoreSlim _slots;
    private readonly ServerHostSet _hosts;
    private readonly ValidationWatchdog _watchdog;

    // Housekeeping: one thread per pool, so that a starved thread pool cannot stop the keepalive. On
    // the real clock it wakes every period by itself; on an injected clock (tests) a timer wakes it.
    private readonly Thread _housekeeper;
    private readonly AutoResetEvent _wake = new(false);
    private readonly ITimer? _timer;
    private readonly object _runLock = new();
    private TaskCompletionSource<bool>? _nextRun;
    private TaskCompletionSource<bool>? _currentRun;

    private ServerFacts _facts;
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
        : this(PoolSettings.Create(options), new Random())
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
        _slots = new SemaphoreSlim(_options.MaxPoolSize, _options.MaxPoolSize);
        _hosts = new ServerHostSet(settings.Hosts);
        _watchdog = new ValidationWatchdog(_time, AbortSocket);
        _facts = ServerFacts.Initial(_options);
        _metrics = new PoolMetrics(settings.PoolName, _options.MaxPoolSize, _options.MinIdle, GetStatistics, _counters);
        _housekeeper = new Thread(HousekeepingLoop) { IsBackground = true, Name = "NHKeepAlive housekeeping" };
        if (_time != TimeProvider.System)
            _timer = _time.CreateTimer(static s => ((KeepAlivePool)s!).RequestHousekeeping(), this, HousekeepingPeriod, Timeout.InfiniteTimeSpan);
        _housekeeper.Start();
        if (_options.MinIdle > 0)
            RequestHousekeeping();
        Hosting.PoolLifetime.Register(this);
    }

    /// <summary>The pool's name, as logs and metrics show it.</summary>
    public string Name => _settings.PoolName;

    /// <summary>The driver the pool opens connections with: MySql.Data or MySqlConnector.</summary>
    public string DriverName => _driver.Name;

    /// <summary>The housekeeping run requested, in progress or last finished (tests wait on it).</summary>
    internal Task HousekeepingTask
    {
        get
        {
            lock (_runLock)
                return (_nextRun ?? _currentRun)?.Task ?? Task.CompletedTask;
        }
    }

    private TimeSpan Now => _time.GetElapsedTime(_startTimestamp);

    private bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    private ServerFacts Facts => Volatile.Read(ref _facts);

    /// <summary>How often housekeeping runs: a quarter of the keepalive interval, at most 30 s.</summary>
    internal TimeSpan HousekeepingPeriod
    {
        get
        {
            var period = s_maxHousekeepingPeriod;
            if (Facts.KeepAliveInterval is { } interval)
                period = Min(period, TimeSpan.FromTicks(interval.Ticks / 4));
            if (_options.LeakDetectionThreshold > TimeSpan.Zero)
                period = Min(period, TimeSpan.FromTicks(_options.LeakDetectionThreshold.Ticks / 2));
            if (_options.IdleTimeout > TimeSpan.Zero)
                period = Min(period, TimeSpan.FromTicks(_options.IdleTimeout.Ticks / 2));
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

    /// <summary>
    /// Takes an open, validated connection without blocking a thread; give it back with <see cref="Return"/>.
    /// A cancelled call returns at once, even while a connection is being opened or validated for it;
    /// that connection then goes to the idle list (or is closed), never leaked.
    /// </summary>
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
    /// <paramref name="failure"/> shows is gone, is evicted; a transaction left open is rolled back and
    /// session state the caller changed is reset (<see cref="KeepAliveOptions.SessionReset"/>).
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
            if (!_all.TryGetValue(connection, out pooled!) || pooled.State != PooledConnectionState.Leased)
            {
                if (pooled is null && IsDisposed)
                    return; // Closed by the pool's shutdown while on loan (or never ours: nothing to do either way).
                throw new InvalidOperationException(
                    $"This connection is not out on loan from pool '{Name}': it was returned already, or it came from another pool or from the driver itself.");
            }

            Move(pooled, PooledConnectionState.Checking);
        }

        try
        {
            _metrics.Used(Now - pooled.LeasedAt);
            pooled.LeaseStack = null;
            var (reason, detail) = CleanForReuse(pooled, failure ?? pooled.ReportedFailure);
            if (reason is { } evict)
            {
                Close(pooled, evict, detail!);
                return;
            }

            var now = Now;
            pooled.LastUsed = now;
            pooled.LastAlive = now;
            ToIdle(pooled, newest: true);
        }
        finally
        {
            _slots.Release();
        }
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
        PooledConnection? pooled;
        lock (_lock)
        {
            if (!_all.TryGetValue(connection, out pooled) || pooled.State != PooledConnectionState.Leased)
                return;
            pooled.ReportedFailure = failure;
        }

        if (NodeHealth.Classify(failure) is { } unfit)
            LeaveHost(pooled.Host, unfit);
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
    /// <c>connection.release_mode=on_close</c>, say): call it before each command and before beginning
    /// a transaction. Its socket is checked first (no round trip); one seen alive within the bypass
    /// window costs nothing more; an older one is pinged (bounded by the validation timeout). A dead one
    /// is reopened in place, on the same object, so the caller's next command runs. A reopen loses the
    /// session's server-side state: session variables, temporary tables, user locks, prepared
    /// statements, <c>LAST_INSERT_ID()</c>, and a database chosen with <c>USE</c>. Where the driver keeps
    /// the server's status flags (MySql.Data), a session change reported by the previous statement is
    /// also noted here, so that the return resets the session (<see cref="SessionResetPolicy.Auto"/>).
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
            if (!_all.TryGetValue(connection, out pooled!) || pooled.State != PooledConnectionState.Leased)
                throw new InvalidOperationException($"This connection is not on loan from pool '{Name}'.");
            generation = _generation;
        }

        var now = Now;
        var idle = now - pooled.LastAlive;

        // Before each command the driver still holds the status flags of the previous reply: a session
        // change it reports is remembered for the return (the flags themselves last one reply only).
        if (_options.SessionReset == SessionResetPolicy.Auto && !pooled.SessionChanged && _driver.SessionMayHaveChanged(connection) == true)
            pooled.SessionChanged = true;
        string why;
        var reason = EvictionReason.Broken;
        if (connection.State != ConnectionState.Open)
        {
            why = "found closed";
        }
        else if (CheckSocket(pooled) is { } closed)
        {
            why = closed;
            reason = EvictionReason.SocketClosed;
        }
        else if (!NeedsValidation(pooled, now, generation, Facts.BypassWindow))
        {
            pooled.LastAlive = now;
            return false;
        }
        else
        {
#pragma warning disable CA2012 // Synchronous: the ValueTask has completed.
            var outcome = PingAsync(pooled, _options.ValidationTimeout, async: false).GetAwaiter().GetResult();
#pragma warning restore CA2012
            if (RecordValidation(pooled, outcome, generation))
                return false;
            why = outcome switch
            {
                PingOutcome.Timeout => "no answer to validation",
                PingOutcome.Unfit => $"on an unfit host ({pooled.Unfit})",
                _ => "found dead",
            };
            reason = outcome switch
            {
                PingOutcome.Timeout => EvictionReason.ValidationTimedOut,
                PingOutcome.Unfit => EvictionReason.HostUnhealthy,
                _ => EvictionReason.ValidationFailed,
            };
            if (outcome == PingOutcome.Unfit)
                LeaveHost(pooled.Host, pooled.Unfit!);
        }

        AdvanceGeneration($"held connection {pooled.Id} was {why} after {PoolSettings.Show(idle)} idle");
        if (inTransaction || _driver.IsInTransaction(connection) == true)
        {
            // Close the dead connection, so that whatever the caller does next with it (a rollback on
            // dispose, say) fails at once as on any closed connection, instead of writing to a dead socket.
            CloseQuietly(pooled);
            throw new ConnectionLostException(
                $"The connection (pool '{Name}', connection {pooled.Id}) died after {PoolSettings.Show(idle)} idle while a transaction was open on it. " +
                "The server rolled the transaction back: nothing of it was committed, and it was not reopened, as that would silently drop the transaction's earlier statements. Begin a new transaction and run it again.");
        }

        Reopen(pooled, reason, why, idle);
        return true;
    }

    /// <summary>Closes every idle connection and makes the pool validate those in use when they come back (after a failover, say).</summary>
    public void Clear()
    {
        AdvanceGeneration("cleared by the application");
        List<PooledConnection> idle;
        lock (_lock)
            idle = TakeAllIdleLocked();
        foreach (var pooled in idle)
            Close(pooled, EvictionReason.Cleared, "the pool was cleared");
    }

    /// <summary>A snapshot of the pool's state and counters.</summary>
    /// <returns>The snapshot.</returns>
    public PoolStatistics GetStatistics()
    {
        lock (_lock)
        {
            return new PoolStatistics(
                _inState[(int)PooledConnectionState.Leased], _inState[(int)PooledConnectionState.Idle],
                _inState[(int)PooledConnectionState.Opening], _inState[(int)PooledConnectionState.Checking],
                Volatile.Read(ref _pending), _options.MaxPoolSize, _generation, Facts, _counters, _hosts.Snapshot());
        }
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

    private void Shutdown(TimeSpan grace)
    {
        Hosting.PoolLifetime.Unregister(this);
        List<PooledConnection> idle;
        lock (_lock)
        {
            if (_disposed != 0)
                return;
            Volatile.Write(ref _disposed, 1);
            idle = TakeAllIdleLocked();
        }

        _watchdog.Stop();
        _timer?.Dispose();
        _wake.Set();
        foreach (var pooled in idle)
            Close(pooled, EvictionReason.PoolDisposed, "the pool was disposed");
        if (Thread.CurrentThread != _housekeeper)
            _housekeeper.Join(_options.ValidationTimeout + TimeSpan.FromSeconds(2));

        // Connections still out (on loan, being opened or checked) come back to a disposed pool and
        // are closed as they do; wait a bounded time for that, then close what is on loan.
        var deadline = Stopwatch.StartNew();
        List<PooledConnection> left;
        lock (_lock)
        {
            while (_all.Count > 0 && deadline.Elapsed < grace)
                Monitor.Wait(_lock, grace - deadline.Elapsed);
            left = [.. _all.Values];
        }

        var now = Now;
        foreach (var pooled in left)
        {
            if (pooled.State != PooledConnectionState.Leased)
                continue; // Being opened or checked: it closes itself when that ends.
            PoolLog.ClosedAtShutdown(_logger, Name, pooled.Id, (now - pooled.LeasedAt).TotalSeconds, pooled.LeaseStack ?? "(stack not captured: enable leak detection to see it)", null);
            AbortSocket(pooled); // Its holder may be in the middle of a command: Close must not wait on it.
            Close(pooled, EvictionReason.PoolDisposed, "still on loan when the pool shut down");
        }

        _watchdog.Dispose();
        _metrics.Dispose();
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
                ? await _slots.WaitAsync(_options.ConnectionTimeout, cancellationToken).ConfigureAwait(false)
                : _slots.Wait(_options.ConnectionTimeout, cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _pending);
        }

        if (!gotSlot)
            throw TimeoutError();

        ValueTask<PooledConnection> work;
        try
        {
            ThrowIfDisposed();
            work = TakeHealthyAsync(async);
        }
        catch
        {
            _slots.Release();
            throw;
        }

        // Connecting and validating are bounded by their own timeouts and run on whatever the caller
        // does: a caller that cancels returns now, and what the work produces goes to the idle list.
        PooledConnection pooled;
        try
        {
            if (!work.IsCompleted && async && cancellationToken.CanBeCanceled)
            {
                var task = work.AsTask();
                if (!await CompletesBeforeAsync(task, cancellationToken).ConfigureAwait(false))
                {
                    _ = task.ContinueWith(static (t, s) => ((KeepAlivePool)s!).Abandoned(t), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    throw new CheckoutAbandonedException(cancellationToken);
                }

                pooled = await task.ConfigureAwait(false);
            }
            else
            {
                pooled = await work.ConfigureAwait(false);
            }

            ToLeased(pooled);
        }
        catch (Exception e) when (e is not CheckoutAbandonedException)
        {
            _slots.Release();
            throw;
        }

        if (_options.LeakDetectionThreshold > TimeSpan.Zero)
            pooled.LeaseStack = new StackTrace(1, true).ToString();
        _metrics.Waited(_time.GetElapsedTime(started));
        return pooled;
    }

    private static async Task<bool> CompletesBeforeAsync(Task task, CancellationToken cancellationToken)
    {
        var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using (cancellationToken.Register(static s => ((TaskCompletionSource<bool>)s!).TrySetResult(true), cancelled))
            return await Task.WhenAny(task, cancelled.Task).ConfigureAwait(false) == task;
    }

    /// <summary>The caller cancelled while its connection was being opened or validated; the slot goes with the work.</summary>
    private sealed class CheckoutAbandonedException(CancellationToken token) : OperationCanceledException(token);

    /// <summary>What a checkout that its caller cancelled produced: a healthy connection goes idle; the slot comes free.</summary>
    private void Abandoned(Task<PooledConnection> work)
    {
        try
        {
            if (work.Status == TaskStatus.RanToCompletion)
                ToIdle(work.Result, newest: true);
            else
                _ = work.Exception; // Observed: the caller had gone; the pool logged what mattered.
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// Takes idle connections, newest first, until one is fit to hand out; opens a new one when none
    /// is. Each one's socket is checked (no round trip); one past the bypass window is also pinged.
    /// Validation spends at most one validation timeout per checkout: after that the caller gets a new
    /// connection rather than another ping (a blackholed path would time out every one).
    /// </summary>
    private async ValueTask<PooledConnection> TakeHealthyAsync(bool async)
    {
        var budget = _options.ValidationTimeout;
        while (true)
        {
            PooledConnection? pooled = null;
            int generation;
            lock (_lock)
            {
                if (_idle.Count > 0)
                {
                    pooled = _idle[_idle.Count - 1];
                    _idle.RemoveAt(_idle.Count - 1);
                    Move(pooled, PooledConnectionState.Checking);
                }

                generation = _generation;
            }

            if (pooled is null)
                break;
            var now = Now;
            if (FailsFreeChecks(pooled, now))
                continue;

            if (!NeedsValidation(pooled, now, generation, Facts.BypassWindow))
                return pooled;
            if (budget <= TimeSpan.Zero)
            {
                ToIdle(pooled, newest: false);
                break;
            }

            var pingStarted = _time.GetTimestamp();
            var outcome = await PingAsync(pooled, budget, async).ConfigureAwait(false);
            budget -= _time.GetElapsedTime(pingStarted);
            if (RecordValidation(pooled, outcome, generation))
                return pooled;

            var idleFor = PoolSettings.Show(now - pooled.LastAlive);
            if (outcome == PingOutcome.Unfit)
            {
                CloseOnUnfitHost(pooled);
                continue;
            }

            if (outcome == PingOutcome.Timeout)
            {
                Close(pooled, EvictionReason.ValidationTimedOut, $"no answer to validation within {PoolSettings.Show(_options.ValidationTimeout)} after {idleFor} idle; the socket was aborted");
                AdvanceGeneration($"connection {pooled.Id} timed out on validation");
                break;
            }

            Close(pooled, EvictionReason.ValidationFailed, $"dead on validation after {idleFor} idle");
            AdvanceGeneration($"connection {pooled.Id} was found dead on checkout");
        }

        return await CreateAsync(async).ConfigureAwait(false);
    }

    /// <summary>
    /// The checks that cost no round trip: past its lifetime, closed by the far end (its socket), or on
    /// a host that was left or that a failback moves away from. Closes a connection that fails one.
    /// </summary>
    private bool FailsFreeChecks(PooledConnection pooled, TimeSpan now)
    {
        if (pooled.IsExpired(now))
        {
            Close(pooled, EvictionReason.MaxLifetime, LifetimeDetail(pooled, now));
            return true;
        }

        if (CheckSocket(pooled) is { } closed)
        {
            Close(pooled, EvictionReason.SocketClosed, $"{closed} after {PoolSettings.Show(now - pooled.LastAlive)} idle");
            AdvanceGeneration($"connection {pooled.Id} was {closed}");
            return true;
        }

        if (_hosts.Verdict(pooled.Host, pooled.HostGeneration) is { } verdict)
        {
            Close(pooled, verdict.Reason, verdict.Detail);
            return true;
        }

        return false;
    }

    /// <summary>Closes a connection whose validation found its node unfit, and leaves that node.</summary>
    private void CloseOnUnfitHost(PooledConnection pooled)
    {
        var unfit = pooled.Unfit!;
        Close(pooled, EvictionReason.HostUnhealthy, $"its host {pooled.Host.Name} is unfit: {unfit}");
        LeaveHost(pooled.Host, unfit);
    }

    /// <summary>Whether a checkout must validate this connection first.</summary>
    internal static bool NeedsValidation(PooledConnection pooled, TimeSpan now, int generation, TimeSpan bypassWindow) =>
        pooled.Generation != generation || now - pooled.LastAlive > bypassWindow;

    /// <summary>The socket check: null if the connection may be alive, else why it is not (counted, in words).</summary>
    private string? CheckSocket(PooledConnection pooled)
    {
        if (!_options.SocketCheck)
            return null;
        switch (pooled.CheckSocket())
        {
            case SocketCheck.Closed:
                _counters.SocketCheckFailed();
                return "closed by the server or the network (its socket had reached end of stream)";
            case SocketCheck.UnexpectedData:
                _counters.SocketCheckFailed();
                return "sent bytes while idle (an error packet before the server closed it, or a broken stream)";
            default:
                return null;
        }
    }

    /// <summary>When a connection created at <paramref name="createdAt"/> retires: the max lifetime less up to 2.5 % of it, so that connections opened together do not retire together.</summary>
    internal static TimeSpan LifetimeExpiry(TimeSpan createdAt, TimeSpan maxLifetime, double random01) =>
        createdAt + maxLifetime - TimeSpan.FromTicks((long)(maxLifetime.Ticks * PoolSettings.LifetimeJitterFraction * random01));

    /// <summary>When a connection opened now retires; null without a max lifetime.</summary>
    private TimeSpan? ExpiryFrom(TimeSpan now) =>
        _options.MaxLifetime > TimeSpan.Zero ? LifetimeExpiry(now, _options.MaxLifetime, NextRandom()) : null;

    private static string LifetimeDetail(PooledConnection pooled, TimeSpan now) =>
        $"reached its max lifetime ({PoolSettings.Show(now - pooled.CreatedAt)} old)";

    /// <summary>Counts a validation and, when the connection answered, records it alive in this generation.</summary>
    private bool RecordValidation(PooledConnection pooled, PingOutcome outcome, int generation)
    {
        _counters.Validate(outcome == PingOutcome.Ok);
        if (outcome != PingOutcome.Ok)
            return false;
        pooled.LastAlive = Now;
        pooled.Generation = generation;
        return true;
    }

    /// <summary>The keepalive interval for a server wait_timeout: half of it, capped by the configured interval, never under 250 ms.</summary>
    internal static TimeSpan? KeepAliveIntervalFor(TimeSpan configured, TimeSpan? serverWaitTimeout) =>
        ServerFacts.KeepAliveIntervalFor(configured, serverWaitTimeout);

    // ---- shared -------------------------------------------------------------------------------

    private enum PingOutcome
    {
        Ok,
        Failed,
        Timeout,

        /// <summary>Alive, but its node is unfit for new work (the reason is in <see cref="PooledConnection.Unfit"/>).</summary>
        Unfit,
    }

    /// <summary>
    /// Pings a connection that nobody else holds, bounded by <paramref name="timeout"/> of the server's
    /// silence: when it passes with nothing to read on the socket (or the pool is disposed), the socket
    /// under the driver is closed, which ends a ping that a blackholed path would otherwise hold for
    /// minutes. An answer that has arrived but waits for a thread to read it is not silence.
    /// </summary>
    private async ValueTask<PingOutcome> PingAsync(PooledConnection pooled, TimeSpan timeout, bool async)
    {
        if (!async && PingsOnWire(pooled))
        {
            var wireWatch = _watchdog.Start(pooled, timeout);
            var result = WirePing.Ping(pooled.Socket!, timeout);
            return WireOutcome(pooled, result, _watchdog.Finish(wireWatch));
        }

        // The validation query is the pool's own, no caller's change: what it leaves in the driver's record
        // is dropped after it. What the loan changed before is no longer there to lose: an idle connection's
        // record was taken at its return, a held one's by EnsureAlive just before. (The node check's
        // SELECTs leave nothing.)
        var ownQuery = _options.SessionReset == SessionResetPolicy.Auto && !_hosts.IsCluster && _options.ValidationQuery is not null;

        bool alive;
        var watch = _watchdog.Start(pooled, timeout);
        var inTime = false;
        try
        {
            // With a host list the validation is the node health query: one round trip as a ping is,
            // and it sees what a ping does not (a node that refuses queries still answers pings).
            alive = _hosts.IsCluster
                ? await CheckNodeAsync(pooled, timeout, async).ConfigureAwait(false)
                : _options.ValidationQuery is { } query
                    ? await RunValidationQueryAsync(pooled.Connection, query, timeout, async).ConfigureAwait(false)
                    : await _driver.PingAsync(pooled.Connection, async, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            inTime = _watchdog.Finish(watch);
            if (ownQuery)
                _ = _driver.SessionMayHaveChanged(pooled.Connection);
        }

        if (!inTime)
            return PingOutcome.Timeout;
        if (!alive || pooled.Connection.State != ConnectionState.Open)
            return PingOutcome.Failed;
        return pooled.Unfit is null ? PingOutcome.Ok : PingOutcome.Unfit;
    }

    /// <summary>Whether a ping of <paramref name="pooled"/> from a thread that may block goes on the wire (<see cref="WirePing"/>) rather than through the driver.</summary>
    private bool PingsOnWire(PooledConnection pooled) =>
        pooled.WirePingable && _wirePing && !_hosts.IsCluster && _options.ValidationQuery is null;

    /// <summary>
    /// What a ping on the wire found, as a validation's outcome. A reply that is not a reply to COM_PING
    /// sends the pool back to the driver's pings.
    /// </summary>
    private PingOutcome WireOutcome(PooledConnection pooled, WirePingResult result, bool inTime)
    {
        if (result == WirePingResult.Garbled && _wirePing)
        {
            _wirePing = false;
            PoolLog.WirePingGarbled(_logger, Name, pooled.Id, _driver.Name, null);
        }

        return !inTime || result == WirePingResult.Timeout ? PingOutcome.Timeout
            : result == WirePingResult.Ok && pooled.Connection.State == ConnectionState.Open ? PingOutcome.Ok
            : PingOutcome.Failed;
    }

    private async ValueTask<bool> CheckNodeAsync(PooledConnection pooled, TimeSpan timeout, bool async)
    {
        try
        {
            pooled.Unfit = await _driver.CheckNodeAsync(pooled.Connection, _options.AllowReadOnly, timeout, async).ConfigureAwait(false);
            return true;
        }
#pragma warning disable CA1031 // Any other failure of the health query means the connection is not fit to hand out.
        catch (Exception)
#pragma warning restore CA1031
        {
            return false;
        }
    }

    private static async ValueTask<bool> RunValidationQueryAsync(DbConnection connection, string query, TimeSpan timeout, bool async)
    {
        try
        {
            using var command = connection.CreateCommand();
            command.CommandText = query;
            command.CommandTimeout = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds));
            if (async)
                await command.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
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

    // ---- states -------------------------------------------------------------------------------

    /// <summary>The one place a connection changes state. Under the lock.</summary>
    private void Move(PooledConnection pooled, PooledConnectionState to)
    {
        Debug.Assert(Monitor.IsEntered(_lock), "state changes happen under the pool's lock");
        _inState[(int)pooled.State]--;
        pooled.State = to;
        _inState[(int)to]++;
    }

    /// <summary>Hands a connection that was opened or checked for a caller to that caller.</summary>
    private void ToLeased(PooledConnection pooled)
    {
        lock (_lock)
        {
            if (!IsDisposed)
            {
                Move(pooled, PooledConnectionState.Leased);
                pooled.LeasedAt = Now;
                pooled.LeakReported = false;
                pooled.ReportedFailure = null;
                pooled.SessionChanged = false;
                return;
            }
        }

        Close(pooled, EvictionReason.PoolDisposed, "the pool was disposed while it was being checked out");
        ThrowIfDisposed();
    }

    /// <summary>The one way back to the idle list; a disposed pool refuses and closes the connection.</summary>
    private void ToIdle(PooledConnection pooled, bool newest)
    {
        lock (_lock)
        {
            if (!IsDisposed)
            {
                Move(pooled, PooledConnectionState.Idle);
                if (newest)
                    _idle.Add(pooled);
                else
                    _idle.Insert(0, pooled);
                return;
            }
        }

        Close(pooled, EvictionReason.PoolDisposed, "the pool was disposed");
    }

    /// <summary>The one drain of the idle list, shared by Clear and Dispose. Under the lock.</summary>
    private List<PooledConnection> TakeAllIdleLocked()
    {
        var idle = new List<PooledConnection>(_idle);
        _idle.Clear();
        foreach (var pooled in idle)
            Move(pooled, PooledConnectionState.Checking);
        return idle;
    }

    /// <summary>Closes a connection that is out of the idle list, once, and forgets it.</summary>
    private void Close(PooledConnection pooled, EvictionReason reason, string detail)
    {
        lock (_lock)
        {
            if (pooled.State is PooledConnectionState.Closing or PooledConnectionState.Closed)
                return;
            if (pooled.State == PooledConnectionState.Idle)
                _idle.Remove(pooled);
            Move(pooled, PooledConnectionState.Closing);
        }

        _counters.Evict(reason);
        PoolLog.ConnectionEvicted(_logger, Name, pooled.Id, reason, detail, null);
        if (reason is EvictionReason.ValidationTimedOut or EvictionReason.KeepAliveFailed)
            AbortSocket(pooled); // Never let Close wait on a dead socket.
        Forget(pooled);
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

        s_owners.Remove(pooled.Connection);
        _driver.ForgetSession(pooled.Connection);
        lock (_lock)
        {
            _all.Remove(pooled.Connection);
            Move(pooled, PooledConnectionState.Closed);
            if (IsDisposed)
                Monitor.PulseAll(_lock);
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
        int generation;
        lock (_lock)
            generation = ++_generation;
        PoolLog.GenerationAdvanced(_logger, Name, generation, detail, null);
    }

    private PoolTimeoutException TimeoutError()
    {
        var statistics = GetStatistics();
        _counters.TimeOut();
        PoolLog.PoolTimeout(_logger, Name, statistics.ToString(), null);
        return new PoolTimeoutException(
            $"Timed out after {PoolSettings.Show(_options.ConnectionTimeout)} waiting for a connection from pool '{Name}' ({statistics}). " +
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
