using System;
using System.Collections.Generic;
using System.Linq;

namespace NHKeepAlive;

/// <summary>
/// Every option of <see cref="KeepAliveOptions"/> that has a property name, each declared once, in
/// the order of README's options table (a unit test holds README to this list). Checks that relate
/// two options stay together in <see cref="PoolSettings.Validate"/>. The folder is Configuration/, the
/// namespace stays <c>NHKeepAlive</c>: a namespace <c>NHKeepAlive.Configuration</c> would hide
/// NHibernate's <c>Configuration</c> class from code in any <c>NHKeepAlive.*</c> namespace (the adapters').
/// </summary>
internal static class KeepAliveOptionTable
{
    // The keywords a connection string sizes the driver's pool with. The driver's own builder maps each
    // to its canonical key and every alias it knows ("MaximumPoolSize", "maxpoolsize", ...) onto that key.
    private static readonly string[] s_maxPoolSizeKeywords = ["Max Pool Size", "Maximum Pool Size"];
    private static readonly string[] s_minPoolSizeKeywords = ["Min Pool Size", "Minimum Pool Size"];
    private static readonly string[] s_lifetimeKeywords = ["Connection Lifetime"];
    private static readonly string[] s_idleTimeoutKeywords = ["Connection Idle Timeout"];

    public static readonly KeepAliveOption<string?> ConnectionString = new(
        KeepAliveProperties.ConnectionString, nameof(KeepAliveOptions.ConnectionString), null,
        o => o.ConnectionString, (o, v) => o.ConnectionString = v, (_, v) => v,
        "the ADO.NET connection string, when NHibernate's `connection.connection_string` does not give it",
        defaultText: "(none)");

    public static readonly KeepAliveOption<MySqlDriver> Driver = new(
        KeepAliveProperties.Driver, nameof(KeepAliveOptions.Driver), MySqlDriver.Auto,
        o => o.Driver, (o, v) => o.Driver = v, (k, v) => MySqlDriverChoice.Parse(v, k),
        "`mysql.data`, `mysqlconnector`, or `auto` (MySql.Data if referenced, else MySqlConnector)",
        check: v => v is MySqlDriver.Auto or MySqlDriver.MySqlData or MySqlDriver.MySqlConnector ? null : "use Auto, MySqlData or MySqlConnector.");

    public static readonly KeepAliveOption<int> MaxPoolSize = new(
        KeepAliveProperties.MaxPoolSize, nameof(KeepAliveOptions.MaxPoolSize), KeepAliveOptions.DefaultMaxPoolSize,
        o => o.MaxPoolSize, (o, v) => o.MaxPoolSize = v, OptionText.ParseInt,
        "physical connections in use and idle together (the drivers' default)",
        check: v => v < 1 || v > PoolSettings.MaxPoolSizeLimit ? $"it must be between 1 and {PoolSettings.MaxPoolSizeLimit}." : null,
        connectionStringKeywords: s_maxPoolSizeKeywords, parseConnectionString: OptionText.ParseConnectionStringCount);

    public static readonly KeepAliveOption<int> MinIdle = new(
        KeepAliveProperties.MinIdle, nameof(KeepAliveOptions.MinIdle), 0,
        o => o.MinIdle, (o, v) => o.MinIdle = v, OptionText.ParseInt,
        "idle connections kept open, filled right after the pool is built and refilled in the background",
        check: v => v < 0 ? "it must be 0 or more." : null,
        connectionStringKeywords: s_minPoolSizeKeywords, parseConnectionString: OptionText.ParseConnectionStringCount);

    public static readonly KeepAliveOption<TimeSpan> ConnectionTimeout = Wait(
        KeepAliveProperties.ConnectionTimeout, nameof(KeepAliveOptions.ConnectionTimeout), KeepAliveOptions.DefaultConnectionTimeout,
        o => o.ConnectionTimeout, (o, v) => o.ConnectionTimeout = v, zeroAllowed: false,
        "longest wait for a free connection when the pool is full");

    public static readonly KeepAliveOption<TimeSpan> ValidationTimeout = Wait(
        KeepAliveProperties.ValidationTimeout, nameof(KeepAliveOptions.ValidationTimeout), KeepAliveOptions.DefaultValidationTimeout,
        o => o.ValidationTimeout, (o, v) => o.ValidationTimeout = v, zeroAllowed: false,
        "longest the server may stay silent on one ping before its socket is aborted; must be below the connection timeout");

    public static readonly KeepAliveOption<TimeSpan> ValidationBypassWindow = Wait(
        KeepAliveProperties.ValidationBypassWindow, nameof(KeepAliveOptions.ValidationBypassWindow), KeepAliveOptions.DefaultValidationBypassWindow,
        o => o.ValidationBypassWindow, (o, v) => o.ValidationBypassWindow = v, zeroAllowed: true,
        "a connection seen alive this recently is handed out without a ping, after the socket check (0 pings every checkout)");

    public static readonly KeepAliveOption<string?> ValidationQuery = new(
        KeepAliveProperties.ValidationQuery, nameof(KeepAliveOptions.ValidationQuery), null,
        o => o.ValidationQuery, (o, v) => o.ValidationQuery = v, (_, v) => string.IsNullOrWhiteSpace(v) ? null : v,
        "SQL to validate with instead of COM_PING",
        check: v => v is not null && string.IsNullOrWhiteSpace(v) ? "leave it null to validate with the protocol ping." : null,
        show: v => v is null ? "null" : string.IsNullOrWhiteSpace(v) ? "blank" : $"'{v}'",
        defaultText: "(ping)");

    public static readonly KeepAliveOption<bool> SocketCheck = new(
        KeepAliveProperties.SocketCheck, nameof(KeepAliveOptions.SocketCheck), true,
        o => o.SocketCheck, (o, v) => o.SocketCheck = v, OptionText.ParseBool,
        "poll each connection's socket (no round trip) on checkout, before a held connection's command or transaction, and in the housekeeping sweep; false falls back to pings only");

    public static readonly KeepAliveOption<bool> AllowReadOnly = new(
        KeepAliveProperties.AllowReadOnly, nameof(KeepAliveOptions.AllowReadOnly), false,
        o => o.AllowReadOnly, (o, v) => o.AllowReadOnly = v, OptionText.ParseBool,
        "with a host list, a read-only node counts as healthy (a pool that reads); false leaves it, as a pool that writes must");

    public static readonly KeepAliveOption<SessionResetPolicy> SessionReset = new(
        KeepAliveProperties.SessionReset, nameof(KeepAliveOptions.SessionReset), SessionResetPolicy.Auto,
        o => o.SessionReset, (o, v) => o.SessionReset = v, OptionText.ParseSessionReset,
        "`auto`, `always` or `never`: see [Session state](#session-state)",
        check: v => v is SessionResetPolicy.Auto or SessionResetPolicy.Always or SessionResetPolicy.Never ? null : "use Auto, Always or Never.");

    public static readonly KeepAliveOption<TimeSpan> MaxLifetime = Period(
        KeepAliveProperties.MaxLifetime, nameof(KeepAliveOptions.MaxLifetime), KeepAliveOptions.DefaultMaxLifetime,
        o => o.MaxLifetime, (o, v) => o.MaxLifetime = v,
        "connections retire this old, less up to 2.5 % jitter, never while in use (0: never)",
        s_lifetimeKeywords);

    public static readonly KeepAliveOption<TimeSpan> IdleTimeout = Period(
        KeepAliveProperties.IdleTimeout, nameof(KeepAliveOptions.IdleTimeout), KeepAliveOptions.DefaultIdleTimeout,
        o => o.IdleTimeout, (o, v) => o.IdleTimeout = v,
        "idle connections above the minimum close after this (0: never)",
        s_idleTimeoutKeywords);

    public static readonly KeepAliveOption<TimeSpan> KeepAliveInterval = Period(
        KeepAliveProperties.KeepAliveInterval, nameof(KeepAliveOptions.KeepAliveInterval), KeepAliveOptions.DefaultKeepAliveInterval,
        o => o.KeepAliveInterval, (o, v) => o.KeepAliveInterval = v,
        "cap of the keepalive interval (half of `wait_timeout` when shorter); keep it below any middlebox idle timeout (0: off)");

    public static readonly KeepAliveOption<TimeSpan> LeakDetectionThreshold = Period(
        KeepAliveProperties.LeakDetectionThreshold, nameof(KeepAliveOptions.LeakDetectionThreshold), TimeSpan.Zero,
        o => o.LeakDetectionThreshold, (o, v) => o.LeakDetectionThreshold = v,
        "log a connection held longer than this, with the stack that took it",
        defaultText: "0 (off)");

    public static readonly KeepAliveOption<TimeSpan> ShutdownGracePeriod = Wait(
        KeepAliveProperties.ShutdownGracePeriod, nameof(KeepAliveOptions.ShutdownGracePeriod), KeepAliveOptions.DefaultShutdownGracePeriod,
        o => o.ShutdownGracePeriod, (o, v) => o.ShutdownGracePeriod = v, zeroAllowed: true,
        "how long `Dispose` waits for connections on loan before it closes them (0: close at once)");

    public static readonly KeepAliveOption<TimeSpan> TenantPoolRetireAfter = Period(
        KeepAliveProperties.TenantPoolRetireAfter, nameof(KeepAliveOptions.TenantPoolRetireAfter), KeepAliveOptions.DefaultTenantPoolRetireAfter,
        o => o.TenantPoolRetireAfter, (o, v) => o.TenantPoolRetireAfter = v,
        "a pool of another connection string than the configured one (a tenant's database) with nothing on loan this long is closed, and built again on next use (0: never)");

    public static readonly KeepAliveOption<string?> PoolName = new(
        KeepAliveProperties.PoolName, nameof(KeepAliveOptions.PoolName), null,
        o => o.PoolName, (o, v) => o.PoolName = v, (_, v) => v,
        "name in logs and metrics",
        defaultText: "host:port/db");

    /// <summary>Every option, in README's order.</summary>
    public static IReadOnlyList<KeepAliveOption> All { get; } =
    [
        ConnectionString, Driver, MaxPoolSize, MinIdle, ConnectionTimeout, ValidationTimeout, ValidationBypassWindow,
        ValidationQuery, SocketCheck, AllowReadOnly, SessionReset, MaxLifetime, IdleTimeout, KeepAliveInterval,
        LeakDetectionThreshold, ShutdownGracePeriod, TenantPoolRetireAfter, PoolName,
    ];

    private static readonly Dictionary<string, KeepAliveOption> s_byName = All.ToDictionary(o => o.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>Every property name, sorted: what the "unknown property" error lists.</summary>
    public static IReadOnlyCollection<string> Names { get; } = All.Select(o => o.Name).OrderBy(n => n, StringComparer.Ordinal).ToArray();

    /// <summary>The option named <paramref name="name"/> (case-insensitive), if there is one.</summary>
    public static bool TryFind(string name, out KeepAliveOption option) => s_byName.TryGetValue(name, out option!);

    /// <summary>A wait a caller may be asked to accept: at most <see cref="PoolSettings.MaxWait"/>.</summary>
    private static KeepAliveOption<TimeSpan> Wait(string name, string member, TimeSpan defaultValue, Func<KeepAliveOptions, TimeSpan> get, Action<KeepAliveOptions, TimeSpan> set, bool zeroAllowed, string doc) =>
        new(name, member, defaultValue, get, set, OptionText.ParseDuration, doc, check: v => DurationProblem(v, PoolSettings.MaxWait, zeroAllowed));

    /// <summary>A period (lifetime, interval), zero for off: at most <see cref="PoolSettings.MaxPeriod"/>, what a timer can hold.</summary>
    private static KeepAliveOption<TimeSpan> Period(string name, string member, TimeSpan defaultValue, Func<KeepAliveOptions, TimeSpan> get, Action<KeepAliveOptions, TimeSpan> set, string doc, string[]? connectionStringKeywords = null, string? defaultText = null) =>
        new(name, member, defaultValue, get, set, OptionText.ParseDuration, doc,
            check: v => DurationProblem(v, PoolSettings.MaxPeriod, zeroAllowed: true),
            defaultText: defaultText,
            connectionStringKeywords: connectionStringKeywords,
            parseConnectionString: connectionStringKeywords is null ? null : OptionText.ParseConnectionStringSeconds);

    private static string? DurationProblem(TimeSpan value, TimeSpan max, bool zeroAllowed)
    {
        if (value < TimeSpan.Zero || (!zeroAllowed && value == TimeSpan.Zero))
            return $"it must be {(zeroAllowed ? "zero (off) or more" : "more than zero")}.";
        return value > max ? $"it must be at most {PoolSettings.Show(max)}." : null;
    }
}
