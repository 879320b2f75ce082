using System;
using Microsoft.Extensions.Logging;

namespace NHKeepAlive.Diagnostics;

/// <summary>The pool's log events (category <c>NHKeepAlive.Pool</c>), defined once.</summary>
internal static class PoolLog
{
    public static readonly Action<ILogger, string, int, string, int?, Exception?> ConnectionOpened =
        LoggerMessage.Define<string, int, string, int?>(LogLevel.Debug, new EventId(1, "ConnectionOpened"),
            "Pool {Pool}: opened connection {ConnectionId} with {Driver} (server thread {ServerThread})");

    public static readonly Action<ILogger, string, int, EvictionReason, string, Exception?> ConnectionEvicted =
        LoggerMessage.Define<string, int, EvictionReason, string>(LogLevel.Information, new EventId(2, "ConnectionEvicted"),
            "Pool {Pool}: closed connection {ConnectionId} ({Reason}): {Detail}");

    public static readonly Action<ILogger, string, double, double, Exception?> KeepAliveIntervalChosen =
        LoggerMessage.Define<string, double, double>(LogLevel.Information, new EventId(3, "KeepAliveIntervalChosen"),
            "Pool {Pool}: server wait_timeout is {WaitTimeoutSeconds} s; idle connections are pinged every {IntervalSeconds} s");

    public static readonly Action<ILogger, string, int, double, string, Exception?> LeakSuspected =
        LoggerMessage.Define<string, int, double, string>(LogLevel.Warning, new EventId(4, "LeakSuspected"),
            "Pool {Pool}: connection {ConnectionId} has been held for {HeldSeconds} s, longer than the leak detection threshold; it was taken at:\n{StackTrace}");

    public static readonly Action<ILogger, string, int, Exception?> TransactionRolledBack =
        LoggerMessage.Define<string, int>(LogLevel.Warning, new EventId(5, "TransactionRolledBack"),
            "Pool {Pool}: connection {ConnectionId} came back inside an open transaction; it was rolled back before reuse");

    public static readonly Action<ILogger, string, int, string, Exception?> GenerationAdvanced =
        LoggerMessage.Define<string, int, string>(LogLevel.Information, new EventId(6, "GenerationAdvanced"),
            "Pool {Pool}: generation {Generation}: idle connections older than this failure are validated before reuse ({Detail})");

    public static readonly Action<ILogger, string, Exception?> HousekeepingFailed =
        LoggerMessage.Define<string>(LogLevel.Error, new EventId(7, "HousekeepingFailed"),
            "Pool {Pool}: housekeeping failed; it will run again at the next tick");

    public static readonly Action<ILogger, string, string, Exception?> PoolTimeout =
        LoggerMessage.Define<string, string>(LogLevel.Warning, new EventId(8, "PoolTimeout"),
            "Pool {Pool}: a caller timed out waiting for a connection ({State})");

    public static readonly Action<ILogger, string, string, Exception?> WaitTimeoutUnknown =
        LoggerMessage.Define<string, string>(LogLevel.Warning, new EventId(9, "WaitTimeoutUnknown"),
            "Pool {Pool}: could not read the server's wait_timeout ({Detail}); the keepalive uses its configured interval");

    public static readonly Action<ILogger, string, int, string, double, Exception?> ConnectionReopened =
        LoggerMessage.Define<string, int, string, double>(LogLevel.Warning, new EventId(11, "ConnectionReopened"),
            "Pool {Pool}: held connection {ConnectionId} was {Why} after {IdleSeconds} s idle; reopened in place (session state on the server is lost)");

    public static readonly Action<ILogger, string, int, double, string, Exception?> KeepAlivePinged =
        LoggerMessage.Define<string, int, double, string>(LogLevel.Trace, new EventId(12, "KeepAlivePinged"),
            "Pool {Pool}: keepalive ping of connection {ConnectionId} after {IdleSeconds} s idle: {Outcome}");

    public static readonly Action<ILogger, string, Exception?> MinIdleRefillFailed =
        LoggerMessage.Define<string>(LogLevel.Warning, new EventId(10, "MinIdleRefillFailed"),
            "Pool {Pool}: could not open a connection to keep the minimum idle; retrying at the next tick");

    public static readonly Action<ILogger, string, string, Exception?> SocketCheckUnavailable =
        LoggerMessage.Define<string, string>(LogLevel.Information, new EventId(13, "SocketCheckUnavailable"),
            "Pool {Pool}: no TCP socket was found under {Driver}'s connection (a unix socket, a named pipe, or a driver version whose insides are unknown); dead idle connections are found by pings alone");

    public static readonly Action<ILogger, string, int, string, Exception?> WirePingGarbled =
        LoggerMessage.Define<string, int, string>(LogLevel.Warning, new EventId(19, "WirePingGarbled"),
            "Pool {Pool}: connection {ConnectionId} answered the pool's own ping with something that is not a reply to it (an encrypted or compressed protocol the pool did not recognise?); it was closed, and the pool now pings through {Driver}'s Ping()");

    public static readonly Action<ILogger, string, int, double, string, Exception?> ClosedAtShutdown =
        LoggerMessage.Define<string, int, double, string>(LogLevel.Warning, new EventId(14, "ClosedAtShutdown"),
            "Pool {Pool}: connection {ConnectionId} was still on loan when the pool shut down (held {HeldSeconds} s); it was closed. It was taken at:\n{StackTrace}");

    public static readonly Action<ILogger, string, int, string, Exception?> SessionReset =
        LoggerMessage.Define<string, int, string>(LogLevel.Debug, new EventId(15, "SessionReset"),
            "Pool {Pool}: connection {ConnectionId}'s session was reset before reuse ({Why})");

    public static readonly Action<ILogger, string, string, string, Exception?> HostLeft =
        LoggerMessage.Define<string, string, string>(LogLevel.Warning, new EventId(16, "HostLeft"),
            "Pool {Pool}: host {Host} was left: {Reason}; its idle connections are closed and new ones go to the next healthy host");

    public static readonly Action<ILogger, string, string, Exception?> HostBack =
        LoggerMessage.Define<string, string>(LogLevel.Information, new EventId(17, "HostBack"),
            "Pool {Pool}: host {Host} is healthy again; the pool fails back to it as connections retire");

    public static readonly Action<ILogger, string, string, string, double, Exception?> LoneHostStillUnfit =
        LoggerMessage.Define<string, string, string, double>(LogLevel.Warning, new EventId(18, "LoneHostStillUnfit"),
            "Pool {Pool}: {Host}, the only host, is still unfit ({Reason}) after {Seconds} s of checks; connections to it are handed out unchecked again, and its errors reach the callers as they are");

    /// <summary>An option set explicitly (in code or by an <c>nhkeepalive.*</c> property) contradicts the connection string's pool keyword; the explicit value is used. Logged once, when the pool is built.</summary>
    public static readonly Action<ILogger, string, string, string, string, string, string, Exception?> OptionOverridesConnectionString =
        LoggerMessage.Define<string, string, string, string, string, string>(LogLevel.Warning, new EventId(20, "OptionOverridesConnectionString"),
            "Pool {Pool}: {Option} is set to {Value} ({Property}), but the connection string's '{Keyword}' says {ConnectionStringValue}; the pool uses the explicitly set value");

    public static readonly Action<ILogger, string, int, double, string, Exception?> DroppedConnectionRecovered =
        LoggerMessage.Define<string, int, double, string>(LogLevel.Warning, new EventId(21, "DroppedConnectionRecovered"),
            "Pool {Pool}: connection {ConnectionId} was dropped by the application without being given back (its handle was garbage-collected after {HeldSeconds} s on loan); it was taken back, cleaned and reused. Dispose connections (or close NHibernate sessions) when done. It was taken at:\n{StackTrace}");

    public static readonly Action<ILogger, string, int, string, Exception?> TransactionStartedAgain =
        LoggerMessage.Define<string, int, string>(LogLevel.Debug, new EventId(22, "TransactionStartedAgain"),
            "Pool {Pool}: connection {ConnectionId} was gone as a transaction began on it ({Disconnect}); the transaction begins again on another connection (nothing of the caller's had run on it)");

    public static readonly Action<ILogger, string, string, int, int, Exception?> ServerFull =
        LoggerMessage.Define<string, string, int, int>(LogLevel.Warning, new EventId(23, "ServerFull"),
            "Pool {Pool}: the server refuses new connections ({ServerWords}); with {Live} open (the pool's maximum is {MaxPoolSize}), callers now wait for one to come back, and the pool tries to connect again at most every second");

    public static readonly Action<ILogger, string, int, Exception?> ServerFullLifted =
        LoggerMessage.Define<string, int>(LogLevel.Information, new EventId(24, "ServerFullLifted"),
            "Pool {Pool}: the server accepts new connections again ({Live} open); callers no longer wait for one to come back");

    public static readonly Action<ILogger, string, int, string, Exception?> WirePingSilent =
        LoggerMessage.Define<string, int, string>(LogLevel.Warning, new EventId(25, "WirePingSilent"),
            "Pool {Pool}: {Count} of the pool's own pings in a row got no answer in time (a protocol the pool did not recognise, which the server does not answer on the raw socket?); the pool now pings through {Driver}'s Ping()");

    public static readonly Action<ILogger, string, string, Exception?> DriverCapabilitiesFound =
        LoggerMessage.Define<string, string>(LogLevel.Information, new EventId(26, "DriverCapabilities"),
            "Pool {Pool}: {Capabilities}");

    public static readonly Action<ILogger, string, int, Exception?> ConnectionReclaimed =
        LoggerMessage.Define<string, int>(LogLevel.Debug, new EventId(27, "ConnectionReclaimed"),
            "Pool {Pool}: connection {ConnectionId}, given back inside a system transaction that is still going, goes to a connection opened inside the same transaction");
}
