using System;
using System.Data;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Diagnostics;

namespace NHKeepAlive;

/// <content>Validation: the socket check, pings (the driver's, the pool's own on the wire, or the node health query), and what their outcomes mean.</content>
public sealed partial class KeepAlivePool
{
    /// <summary>Closes a connection whose validation found its node unfit, and leaves that node.</summary>
    private void CloseOnUnfitHost(PooledConnection pooled)
    {
        var unfit = pooled.Unfit!;
        Close(pooled, Eviction.HostUnhealthy($"its host {pooled.Host.Name} is unfit: {unfit}"));
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
    /// <summary>Silent wire pings in a row after which the pool pings through the driver (see <see cref="WireOutcome"/>).</summary>
    internal const int SilentWirePingsBeforeGivingUp = 3;

    private int _silentWirePings;

    private PingOutcome WireOutcome(PooledConnection pooled, WirePingResult result, bool inTime)
    {
        if (result == WirePingResult.Garbled && _wirePing)
        {
            _wirePing = false;
            PoolLog.WirePingGarbled(_logger, Name, pooled.Id, _driver.Name, null);
        }

        // A stream misjudged as plain whose server ignores a raw COM_PING would time out every wire ping (and close
        // every idle connection, forever): after a few silent ones in a row, with none answered between, the pool
        // goes back to the driver's pings. On a path that is really dead the driver's pings time out as well, bounded
        // the same way, so nothing is lost.
        if (!inTime || result == WirePingResult.Timeout)
        {
            if (Interlocked.Increment(ref _silentWirePings) == SilentWirePingsBeforeGivingUp && _wirePing)
            {
                _wirePing = false;
                PoolLog.WirePingSilent(_logger, Name, SilentWirePingsBeforeGivingUp, _driver.Name, null);
            }
        }
        else if (result == WirePingResult.Ok)
        {
            Volatile.Write(ref _silentWirePings, 0);
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
}
