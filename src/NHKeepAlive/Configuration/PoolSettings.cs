using System;
using System.Collections.Generic;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NHKeepAlive.Diagnostics;
using NHKeepAlive.Drivers;

namespace NHKeepAlive;

/// <summary>
/// The options of one pool, checked once and frozen: a validated copy of <see cref="KeepAliveOptions"/>
/// (each option is declared once, in <see cref="KeepAliveOptionTable"/>), with the connection string's
/// pool keywords taken in, plus what is derived from it. The pool never reads the
/// caller's options object again.
/// </summary>
internal sealed class PoolSettings
{
    /// <summary>The largest share of <see cref="KeepAliveOptions.MaxLifetime"/> that the jitter takes off one connection's lifetime.</summary>
    internal const double LifetimeJitterFraction = 0.025;

    /// <summary>The most connections one pool may hold: far above any server's max_connections.</summary>
    internal const int MaxPoolSizeLimit = 10_000;

    /// <summary>The keepalive interval never goes below this, however short the server's wait_timeout.</summary>
    internal static readonly TimeSpan MinimumKeepAliveInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest wait a caller may be asked to accept (connection, validation, shutdown grace): one hour.</summary>
    internal static readonly TimeSpan MaxWait = TimeSpan.FromHours(1);

    /// <summary>The longest period any option may set (lifetimes, intervals): 24 days, what a timer can hold.</summary>
    internal static readonly TimeSpan MaxPeriod = TimeSpan.FromDays(24);

    private PoolSettings(KeepAliveOptions options, DriverAdapter driver, PreparedConnectionString prepared, string poolName)
    {
        Options = options;
        Driver = driver;
        ConnectionString = prepared.WithPassword;
        PublicConnectionString = prepared.WithoutPassword;
        Password = prepared.Password;
        PoolName = poolName;
        Hosts = prepared.Hosts;
        ServerKey = prepared.ServerKey;
        WithoutDatabase = prepared.WithoutDatabase;
        AutoEnlist = prepared.AutoEnlist;
        LoggerFactory = options.LoggerFactory ?? NullLoggerFactory.Instance;
        TimeProvider = options.TimeProvider ?? TimeProvider.System;
    }

    /// <summary>The server and user this pool connects as (no password, no database): what the process learns once per server (see <see cref="KeepAlivePool"/>'s wait_timeout).</summary>
    public string ServerKey { get; }

    /// <summary><see cref="PublicConnectionString"/> without its database: the key under which the pools of a set share what their sessions learned.</summary>
    public string WithoutDatabase { get; }

    /// <summary>Whether a handle opened inside a TransactionScope enlists in it (the caller's AutoEnlist, true unless it says false).</summary>
    public bool AutoEnlist { get; }

    /// <summary>The validated copy of the options.</summary>
    public KeepAliveOptions Options { get; }

    public DriverAdapter Driver { get; }

    /// <summary>The connection string with the driver's pooling turned off. It keeps the password: drivers drop it from a connection's own ConnectionString once it is open.</summary>
    public string ConnectionString { get; }

    /// <summary>The same without the password: what a connection that is not open shows its holder.</summary>
    public string PublicConnectionString { get; }

    private string? Password { get; }

    public string PoolName { get; }

    /// <summary>The host list, each with the connection string that opens it alone.</summary>
    public IReadOnlyList<(string Name, string ConnectionString)> Hosts { get; }

    public ILoggerFactory LoggerFactory { get; }

    public TimeProvider TimeProvider { get; }

    /// <summary>
    /// Checks and copies <paramref name="options"/>, and takes the pool sizing the connection string
    /// carries (<c>Max Pool Size</c>, <c>Min Pool Size</c>, <c>Connection Lifetime</c>, <c>Connection Idle Timeout</c>,
    /// any alias the driver knows) for each option not set explicitly. An explicit value that
    /// contradicts the string wins, and the contradiction is logged once, as a warning naming both.
    /// </summary>
    public static PoolSettings Create(KeepAliveOptions options, DriverAdapter? driver = null)
    {
        if (options is null)
            throw new ArgumentNullException(nameof(options));
        var copy = options.Clone();
        if (string.IsNullOrWhiteSpace(copy.ConnectionString))
            throw Error(NoConnectionString);
        if (KeepAliveOptionTable.Driver.Problem(copy, KeepAliveOptionTable.Driver.Name) is { } badDriver)
            throw Error(badDriver);
        driver ??= DriverAdapter.Resolve(copy.Driver);
        var prepared = driver.PrepareConnectionString(copy.ConnectionString!);
        var sources = new Dictionary<KeepAliveOption, string>();
        var contradictions = new List<(KeepAliveOption Option, string Keyword, string Explicit, string ConnectionString)>();
        foreach (var (option, keyword, value) in prepared.PoolKeywords)
        {
            if (option.TakeFromConnectionString(copy, keyword, value) is { } contradiction)
                contradictions.Add((option, keyword, contradiction.Explicit, contradiction.ConnectionString));
            else if (!options.IsExplicit(option))
                sources[option] = $"the connection string's '{keyword}'";
        }

        // A drop-in must take the strings users have: a lifetime from the connection string (MySql.Data's
        // 'Connection Lifetime=60', say) shorter than the keepalive interval left at its default shortens the
        // keepalive to half the lifetime instead of refusing the string.
        if (sources.ContainsKey(KeepAliveOptionTable.MaxLifetime) && !options.IsExplicit(KeepAliveOptionTable.KeepAliveInterval)
            && copy.MaxLifetime > TimeSpan.Zero && copy.KeepAliveInterval > TimeSpan.Zero && copy.MaxLifetime <= copy.KeepAliveInterval)
        {
            copy.KeepAliveInterval = TimeSpan.FromTicks(Math.Max(copy.MaxLifetime.Ticks / 2, MinimumKeepAliveInterval.Ticks));
            if (!options.IsExplicit(KeepAliveOptionTable.ValidationBypassWindow) && copy.ValidationBypassWindow >= copy.KeepAliveInterval)
                copy.ValidationBypassWindow = TimeSpan.FromTicks(copy.KeepAliveInterval.Ticks / 2);
        }

        try
        {
            Validate(copy, option => sources.TryGetValue(option, out var source) ? source : option.Name);
        }
        catch (KeepAliveConfigurationException e) when (prepared.Password is { Length: > 0 } password && e.Message.Contains(password))
        {
            throw new KeepAliveConfigurationException(e.Message.Replace(password, "***"));
        }

        var name = string.IsNullOrWhiteSpace(copy.PoolName) ? prepared.DefaultPoolName : copy.PoolName!.Trim();
        if (prepared.Password is { Length: > 0 } secret && name.Contains(secret))
            throw Error($"The pool name ({KeepAliveProperties.PoolName}) contains the connection's password; choose another name.");
        var settings = new PoolSettings(copy, driver, prepared, name);
        if (contradictions.Count > 0)
        {
            var logger = settings.LoggerFactory.CreateLogger("NHKeepAlive.Pool");
            foreach (var c in contradictions)
                PoolLog.OptionOverridesConnectionString(logger, name, c.Option.Member, c.Explicit, c.Option.Name, c.Keyword, c.ConnectionString, null);
        }

        return settings;
    }

    /// <summary>Removes the password from a text a user may read (an exception message, a log line).</summary>
    public string Redact(string text) =>
        Password is { Length: > 0 } password && text is not null ? text.Replace(password, "***") : text!;

    /// <summary>
    /// Checks each value (each option's own range, from <see cref="KeepAliveOptionTable"/>) and the
    /// values against each other (here, side by side); the message names the property to fix, or the
    /// connection string keyword a value came from.
    /// </summary>
    /// <param name="o">The options.</param>
    /// <param name="source">Where an option's value came from, as a message names it; default: its property name.</param>
    internal static void Validate(KeepAliveOptions o, Func<KeepAliveOption, string>? source = null)
    {
        source ??= static option => option.Name;
        if (string.IsNullOrWhiteSpace(o.ConnectionString))
            throw Error(NoConnectionString);
        foreach (var option in KeepAliveOptionTable.All)
        {
            if (option.Problem(o, source(option)) is { } problem)
                throw Error(problem);
        }

        string Name(KeepAliveOption option) => $"{option.Member} ({source(option)})";

        if (o.MinIdle > o.MaxPoolSize)
            throw Error($"{Name(KeepAliveOptionTable.MinIdle)} is {o.MinIdle}, more than {Name(KeepAliveOptionTable.MaxPoolSize)} {o.MaxPoolSize}; lower MinIdle or raise MaxPoolSize.");
        if (o.ValidationTimeout >= o.ConnectionTimeout)
        {
            throw Error($"{Name(KeepAliveOptionTable.ValidationTimeout)} is {Show(o.ValidationTimeout)}, not shorter than {Name(KeepAliveOptionTable.ConnectionTimeout)} {Show(o.ConnectionTimeout)}: a caller could wait on one ping for longer than it may wait at all. Lower ValidationTimeout.");
        }

        if (o.MaxLifetime > TimeSpan.Zero && o.KeepAliveInterval > TimeSpan.Zero && o.MaxLifetime <= o.KeepAliveInterval)
        {
            throw Error($"{Name(KeepAliveOptionTable.MaxLifetime)} is {Show(o.MaxLifetime)}, not longer than {Name(KeepAliveOptionTable.KeepAliveInterval)} {Show(o.KeepAliveInterval)}: connections would be retired before their first keepalive. Raise MaxLifetime or lower KeepAliveInterval.");
        }

        if (o.ValidationBypassWindow > TimeSpan.Zero && o.KeepAliveInterval > TimeSpan.Zero && o.ValidationBypassWindow >= o.KeepAliveInterval)
        {
            throw Error($"{Name(KeepAliveOptionTable.ValidationBypassWindow)} is {Show(o.ValidationBypassWindow)}, not shorter than {Name(KeepAliveOptionTable.KeepAliveInterval)} {Show(o.KeepAliveInterval)}: a connection could be handed out unchecked after it idled long enough to be dropped. Keep the window short (it is meant to be well under a second).");
        }
    }

    private const string NoConnectionString =
        "No connection string was given: set KeepAliveOptions.ConnectionString (or NHibernate's connection.connection_string / connection.connection_string_name).";

    private static KeepAliveConfigurationException Error(string message) => new("Invalid NHKeepAlive options: " + message);

    internal static string Show(TimeSpan value) =>
        value.TotalSeconds >= 1 && value.Milliseconds == 0 ? $"{value.TotalSeconds:0.###} s" : $"{value.TotalMilliseconds:0.###} ms";
}
