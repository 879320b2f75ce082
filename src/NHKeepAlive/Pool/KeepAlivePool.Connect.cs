using System;
using System.Collections.Generic;
using System.Data;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Diagnostics;
using NHKeepAlive.Drivers;

namespace NHKeepAlive;

/// <content>Opening connections: the host list, the lone host behind a proxy, and what a new connection is.</content>
public sealed partial class KeepAlivePool
{
    /// <summary>
    /// Opens a new physical connection on the first healthy host, accounted for from the start (state
    /// Opening). With a host list, a host that cannot be reached or is unfit is left and the next one
    /// tried. Never takes a caller's token: a connect is bounded by the driver's connect timeout, and a
    /// cancelled connect is where drivers leak.
    /// </summary>
    private async ValueTask<PooledConnection> CreateAsync(bool async)
    {
        if (!_hosts.IsCluster)
            return await OpenOnLoneHostAsync(_hosts.Preferred, async).ConfigureAwait(false);
        var failures = new List<string>();
        Exception? last = null;
        foreach (var host in _hosts.OpenOrder())
        {
            try
            {
                var pooled = await OpenOnAsync(host, async).ConfigureAwait(false);
                if (_hosts.MarkUp(host, Now))
                    PoolLog.HostBack(_logger, Name, host.Name, null);
                return pooled;
            }
            catch (Exception e) when (e is ConnectException or UnfitHostException)
            {
                LeaveHost(host, e is UnfitHostException ? e.Message : $"could not connect ({e.InnerException?.Message ?? e.Message})");
                failures.Add($"{host.Name}: {e.Message}");
                last = e;
            }
        }

        throw new ConnectException($"Could not open a connection for pool '{Name}' on any host: {string.Join("; ", failures)}", last!);
    }

    /// <summary>
    /// Opens a connection to the one host there is. After a node error on it, new connections are checked
    /// and an unfit one closed and opened again (a proxy may still route to the unfit node for a moment),
    /// for at most the validation timeout: the caller waits a little rather than meets the same error.
    /// A server still unfit after that is used as it is: there is nowhere else to go.
    /// </summary>
    private async ValueTask<PooledConnection> OpenOnLoneHostAsync(ServerHost host, bool async)
    {
        var started = _time.GetTimestamp();
        while (true)
        {
            try
            {
                var pooled = await OpenOnAsync(host, async).ConfigureAwait(false);
                if (host.Suspect)
                    _hosts.MarkUp(host, Now);
                return pooled;
            }
            catch (UnfitHostException e)
            {
                if (_time.GetElapsedTime(started) >= _options.ValidationTimeout)
                {
                    // Still unfit: the server itself (a read-only replica written to by mistake, say),
                    // not a proxy on its way elsewhere. There is nowhere else to go: stop checking and
                    // hand out what the server gives; its errors reach the callers as they are.
                    PoolLog.LoneHostStillUnfit(_logger, Name, host.Name, e.Message, _options.ValidationTimeout.TotalSeconds, null);
                    _hosts.MarkUp(host, Now);
                    return await OpenOnAsync(host, async).ConfigureAwait(false);
                }

                if (async)
                    await Task.Delay(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
                else
                    Thread.Sleep(100);
            }
        }
    }

    /// <summary>Opens a connection to one host (and, with a host list or a suspect lone host, checks the node is fit).</summary>
    private async ValueTask<PooledConnection> OpenOnAsync(ServerHost host, bool async)
    {
        var connection = _driver.CreateConnection(host.ConnectionString);
        var pooled = new PooledConnection(Interlocked.Increment(ref _nextId), connection, host, Now);
        _registry.Add(pooled);

        var started = _time.GetTimestamp();
        try
        {
            // The connection string says AutoEnlist=false (see ReflectionDriverAdapter.PrepareConnectionString): the
            // driver never enlists a physical connection in the caller's TransactionScope behind the pool's back; a
            // handle enlists its connection itself (KeepAliveConnection). A suppressing scope around the open would do
            // the same, but Mono's, with async flow, does not give the caller's transaction back.
            if (async)
                await connection.OpenAsync(CancellationToken.None).ConfigureAwait(false);
            else
                connection.Open();
        }
        catch (Exception e)
        {
            Forget(pooled);
            if (ConnectionLimit.Classify(e) is { } words)
                throw new ServerFullException(words, ConnectException.From(e, Name, _settings.Redact));
            throw ConnectException.From(e, Name, _settings.Redact);
        }

        string? unfit;
        try
        {
            var generation = Volatile.Read(ref _generation);
            unfit = _hosts.IsCluster || host.Suspect ? await _driver.CheckNodeAsync(connection, _options.AllowReadOnly, _options.ValidationTimeout, async).ConfigureAwait(false) : null;
            if (unfit is null)
            {
                // The session setup reads the wait_timeout in its own round trip when it asks the server anything.
                var learned = Opened(pooled, generation);
                if (generation != Facts.LearnedInGeneration || learned?.WaitTimeout is not null)
                    await LearnWaitTimeoutAsync(connection, generation, learned?.WaitTimeout, async).ConfigureAwait(false);
            }
        }
        catch
        {
            Close(pooled, Eviction.OpenFailed());
            throw;
        }

        if (unfit is not null)
        {
            Close(pooled, Eviction.HostUnhealthy($"opened on {host.Name}, which is unfit: {unfit}"));
            throw new UnfitHostException(unfit);
        }

        // Open: no longer a connect in flight (what Opening counts, and what MaxConnectsInFlight bounds),
        // but on its way to its caller or the idle list.
        _registry.Move(pooled, PooledConnectionState.Opening, PooledConnectionState.Checking);
        _counters.Create();
        _metrics.Created(_time.GetElapsedTime(started));
        PoolLog.ConnectionOpened(_logger, Name, pooled.Id, _driver.Name, pooled.ServerThreadId, null);
        return pooled;
    }

    /// <summary>A host answered but is unfit for new work; the message says why.</summary>
    private sealed class UnfitHostException(string reason) : Exception(reason);

    /// <summary>Leaves a host that is unfit (or, alone, closes its idle connections so that new ones are opened, through a proxy that may route elsewhere).</summary>
    private void LeaveHost(ServerHost host, string reason)
    {
        if (!_hosts.MarkDown(host, reason, Now))
            return;
        PoolLog.HostLeft(_logger, Name, host.Name, reason, null);
        foreach (var pooled in _registry.TakeIdle((p, _) => ReferenceEquals(p.Host, host)))
            Close(pooled, Eviction.HostUnhealthy($"its host {host.Name} was left: {reason}"));
    }

    /// <summary>
    /// Records what a connection is now that it is open (first open or reopen): its server thread, socket, lifetime, and how to
    /// reset its session. Returns what the session setup learned from the server, when it asked (null when it knew already).
    /// </summary>
    private SessionFacts? Opened(PooledConnection pooled, int generation)
    {
        var connection = pooled.Connection;
        var (socket, plain) = _driver.FindSocket(connection);
        if (socket is null && _options.SocketCheck && Interlocked.Exchange(ref _noSocketLogged, 1) == 0)
            PoolLog.SocketCheckUnavailable(_logger, Name, _driver.Name, null);
        SessionFacts? learned = null;
        if (_options.SessionReset != SessionResetPolicy.Never)
        {
            // The nodes of a host list may differ (a rolling upgrade, a node configured apart): each connection there
            // learns for itself, in the round trip it spends anyway beside its node check.
            var setup = _driver.PrepareSession(connection, _hosts.IsCluster ? null : KnownSession(generation));
            pooled.SessionRestore = setup?.Restore;
            pooled.ChangesReported = setup?.ChangesReported ?? true;
            learned = setup?.Learned;
            if (learned is not null && !_hosts.IsCluster)
                LearnedSession(learned, generation);
        }

        var now = Now;
        pooled.Opened(now, ExpiryFrom(now), generation, _driver.ServerThreadId(connection), socket, plain, connection.Database);
        if (_capabilities is null)
            RecordCapabilities(pooled);
        pooled.HostGeneration = pooled.Host.Generation;
        return learned;
    }

    /// <summary>What this pool's session setup learned, in which generation, and when (a <see cref="System.Diagnostics.Stopwatch"/> timestamp).</summary>
    private sealed record SessionLearned(SessionFacts Facts, int Generation, long ReadAt);

    private SessionLearned? _session;

    /// <summary>The key under which pools of a set share what a session setup learned: the driver and the connection string without its database (a tenant's pool differs from the others by its database alone).</summary>
    private string SessionKey => _sessionKey ??= $"{_driver.Name}|{_settings.WithoutDatabase}";

    private string? _sessionKey;

    /// <summary>
    /// What an earlier connection's session setup learned, for a connection opened now: this pool's own, read in the same
    /// generation less than <see cref="SharedServerFacts.FreshFor"/> ago; for a new pool of a set (<see cref="KeepAliveOptions.SharesServerFacts"/>),
    /// another pool's of the same server and connection string, as fresh; else null, and the setup asks the server.
    /// </summary>
    private SessionFacts? KnownSession(int generation)
    {
        if (Volatile.Read(ref _session) is { } own && own.Generation == generation && SharedServerFacts.IsFresh(own.ReadAt))
            return own.Facts;
        if (generation != 0 || !_options.SharesServerFacts || SharedServerFacts.Session(SessionKey) is not { } shared)
            return null;
        Volatile.Write(ref _session, new SessionLearned(shared.Facts, generation, shared.ReadAt));
        return shared.Facts;
    }

    private void LearnedSession(SessionFacts learned, int generation)
    {
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        Volatile.Write(ref _session, new SessionLearned(learned, generation, now));
        SharedServerFacts.KeepSession(SessionKey, learned, now);
    }

    /// <summary>
    /// Takes the server's wait_timeout into the pool's facts: <paramref name="read"/> when the session setup read it; else, for a
    /// new pool of a set, what another pool of the same server read less than <see cref="SharedServerFacts.FreshFor"/> ago; else
    /// read now. A pool reads it again itself after a disconnect (a restarted server may have another).
    /// </summary>
    private async ValueTask LearnWaitTimeoutAsync(DbConnection connection, int generation, TimeSpan? read, bool async)
    {
        TimeSpan? waitTimeout = read;
        if (waitTimeout is { } fromSetup)
        {
            SharedServerFacts.KeepWaitTimeout(_settings.ServerKey, fromSetup);
        }
        else if (generation == 0 && _options.SharesServerFacts && SharedServerFacts.WaitTimeout(_settings.ServerKey) is { } known)
        {
            waitTimeout = known;
        }
        else
        {
            try
            {
                waitTimeout = await _driver.ReadWaitTimeoutAsync(connection, _options.ValidationTimeout, async, CancellationToken.None).ConfigureAwait(false);
                if (waitTimeout is { } value)
                    SharedServerFacts.KeepWaitTimeout(_settings.ServerKey, value);
            }
            catch (Exception e) when (e is DbException or InvalidCastException or FormatException or NotSupportedException or InvalidOperationException or OverflowException)
            {
                PoolLog.WaitTimeoutUnknown(_logger, Name, e.Message, e);
            }
        }

        var facts = ServerFacts.From(_options, waitTimeout ?? Facts.WaitTimeout, generation);
        var previous = Interlocked.Exchange(ref _facts, facts);
        if (waitTimeout is null || previous.WaitTimeout == waitTimeout)
            return;
        PoolLog.KeepAliveIntervalChosen(_logger, Name, waitTimeout.Value.TotalSeconds, facts.KeepAliveInterval?.TotalSeconds ?? 0, null);
        RescheduleHousekeeping(); // The next run was due after the old period: take the new one.
    }

    /// <summary>Opens a held connection's object again on a new physical connection.</summary>
    private void Reopen(PooledConnection pooled, EvictionReason reason, string why, TimeSpan idle)
    {
        var connection = pooled.Connection;
        CloseQuietly(pooled);

        _counters.Evict(reason);
        PoolLog.ConnectionEvicted(_logger, Name, pooled.Id, reason, $"held connection {why}; reopening it in place", null);
        try
        {
            // The driver dropped the password from ConnectionString when it first opened.
            var host = _hosts.Preferred;
            connection.ConnectionString = host.ConnectionString;
            pooled.Host = host;
            connection.Open();
        }
        catch (Exception e)
        {
            // Never leave the password where the holder can read it.
            connection.ConnectionString = _settings.PublicConnectionString;
            throw ConnectException.From(e, Name, _settings.Redact);
        }

        Opened(pooled, Volatile.Read(ref _generation));
        _counters.Reopen();
        _counters.Create();
        PoolLog.ConnectionReopened(_logger, Name, pooled.Id, why, idle.TotalSeconds, null);
    }

    /// <summary>What the driver offered, recorded and logged once, from the pool's first connection.</summary>
    private void RecordCapabilities(PooledConnection pooled)
    {
        var capabilities = new DriverCapabilities(_driver.Name, _driver.Version, pooled.Socket is not null, pooled.WirePingable,
            _driver.KnowsTransactionState, _driver.KeepsStatusFlags, _driver.CanResetSession,
            _options.SessionReset != SessionResetPolicy.Never && pooled.ChangesReported);
        if (Interlocked.CompareExchange(ref _capabilities, capabilities, null) is null)
            PoolLog.DriverCapabilitiesFound(_logger, Name, capabilities.ToString(), null);
    }
}
