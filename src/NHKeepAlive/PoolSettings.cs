using System;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NHKeepAlive.Drivers;

namespace NHKeepAlive;

/// <summary>The options of one pool, checked once and frozen (the pool never reads <see cref="KeepAliveOptions"/> again).</summary>
internal sealed class PoolSettings
{
    /// <summary>The largest share of <see cref="MaxLifetime"/> that the jitter takes off one connection's lifetime.</summary>
    internal const double LifetimeJitterFraction = 0.025;

    /// <summary>The keepalive interval never goes below this, however short the server's wait_timeout.</summary>
    internal static readonly TimeSpan MinimumKeepAliveInterval = TimeSpan.FromMilliseconds(250);

    private PoolSettings(KeepAliveOptions o, DriverAdapter driver, string connectionString, string poolName)
    {
        Driver = driver;
        ConnectionString = connectionString;
        PoolName = poolName;
        MaxPoolSize = o.MaxPoolSize;
        MinIdle = o.MinIdle;
        ConnectionTimeout = o.ConnectionTimeout;
        ValidationTimeout = o.ValidationTimeout;
        ValidationBypassWindow = o.ValidationBypassWindow;
        ValidationQuery = o.ValidationQuery;
        MaxLifetime = o.MaxLifetime;
        IdleTimeout = o.IdleTimeout;
        KeepAliveInterval = o.KeepAliveInterval;
        LeakDetectionThreshold = o.LeakDetectionThreshold;
        LoggerFactory = o.LoggerFactory ?? NullLoggerFactory.Instance;
        TimeProvider = o.TimeProvider ?? TimeProvider.System;
    }

    public DriverAdapter Driver { get; }

    /// <summary>The connection string with the driver's pooling turned off. It keeps the password: drivers drop it from a connection's own ConnectionString once it is open.</summary>
    public string ConnectionString { get; }

    public string PoolName { get; }

    public int MaxPoolSize { get; }

    public int MinIdle { get; }

    public TimeSpan ConnectionTimeout { get; }

    public TimeSpan ValidationTimeout { get; }

    public TimeSpan ValidationBypassWindow { get; }

    public string? ValidationQuery { get; }

    public TimeSpan MaxLifetime { get; }

    public TimeSpan IdleTimeout { get; }

    public TimeSpan KeepAliveInterval { get; }

    public TimeSpan LeakDetectionThreshold { get; }

    public ILoggerFactory LoggerFactory { get; }

    public TimeProvider TimeProvider { get; }

    public static PoolSettings Create(KeepAliveOptions options, DriverAdapter? driver = null)
    {
        if (options is null)
            throw new ArgumentNullException(nameof(options));
        Validate(options);
        driver ??= DriverAdapter.Resolve(options.Driver);
        var (connectionString, defaultName) = driver.PrepareConnectionString(options.ConnectionString!);
        return new PoolSettings(options, driver, connectionString, string.IsNullOrWhiteSpace(options.PoolName) ? defaultName : options.PoolName!.Trim());
    }

    /// <summary>Checks each value and the values against each other; the message names the property to fix.</summary>
    internal static void Validate(KeepAliveOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.ConnectionString))
            throw Error("No connection string was given: set KeepAliveOptions.ConnectionString (or NHibernate's connection.connection_string / connection.connection_string_name).");
        if (o.MaxPoolSize < 1)
            throw Error($"MaxPoolSize ({KeepAliveProperties.MaxPoolSize}) is {o.MaxPoolSize}; it must be at least 1.");
        if (o.MinIdle < 0)
            throw Error($"MinIdle ({KeepAliveProperties.MinIdle}) is {o.MinIdle}; it must be 0 or more.");
        if (o.MinIdle > o.MaxPoolSize)
            throw Error($"MinIdle ({KeepAliveProperties.MinIdle}) is {o.MinIdle}, more than MaxPoolSize ({KeepAliveProperties.MaxPoolSize}) {o.MaxPoolSize}; lower MinIdle or raise MaxPoolSize.");
        Positive(o.ConnectionTimeout, "ConnectionTimeout", KeepAliveProperties.ConnectionTimeout);
        Positive(o.ValidationTimeout, "ValidationTimeout", KeepAliveProperties.ValidationTimeout);
        NotNegative(o.ValidationBypassWindow, "ValidationBypassWindow", KeepAliveProperties.ValidationBypassWindow);
        NotNegative(o.MaxLifetime, "MaxLifetime", KeepAliveProperties.MaxLifetime);
        NotNegative(o.IdleTimeout, "IdleTimeout", KeepAliveProperties.IdleTimeout);
        NotNegative(o.KeepAliveInterval, "KeepAliveInterval", KeepAliveProperties.KeepAliveInterval);
        NotNegative(o.LeakDetectionThreshold, "LeakDetectionThreshold", KeepAliveProperties.LeakDetectionThreshold);
        if (o.ValidationTimeout >= o.ConnectionTimeout)
        {
            throw Error($"ValidationTimeout ({KeepAliveProperties.ValidationTimeout}) is {Show(o.ValidationTimeout)}, not shorter than ConnectionTimeout ({KeepAliveProperties.ConnectionTimeout}) {Show(o.ConnectionTimeout)}: a caller could wait on one ping for longer than it may wait at all. Lower ValidationTimeout.");
        }

        if (o.MaxLifetime > TimeSpan.Zero && o.KeepAliveInterval > TimeSpan.Zero && o.MaxLifetime <= o.KeepAliveInterval)
        {
            throw Error($"MaxLifetime ({KeepAliveProperties.MaxLifetime}) is {Show(o.MaxLifetime)}, not longer than KeepAliveInterval ({KeepAliveProperties.KeepAliveInterval}) {Show(o.KeepAliveInterval)}: connections would be retired before their first keepalive. Raise MaxLifetime or lower KeepAliveInterval.");
        }

        if (o.ValidationBypassWindow > TimeSpan.Zero && o.KeepAliveInterval > TimeSpan.Zero && o.ValidationBypassWindow >= o.KeepAliveInterval)
        {
            throw Error($"ValidationBypassWindow ({KeepAliveProperties.ValidationBypassWindow}) is {Show(o.ValidationBypassWindow)}, not shorter than KeepAliveInterval ({KeepAliveProperties.KeepAliveInterval}) {Show(o.KeepAliveInterval)}: a connection could be handed out unchecked after it idled long enough to be dropped. Keep the window short (it is meant to be well under a second).");
        }

        if (o.ValidationQuery is not null && string.IsNullOrWhiteSpace(o.ValidationQuery))
            throw Error("ValidationQuery is blank; leave it null to validate with the protocol ping.");
    }

    private static void Positive(TimeSpan value, string name, string property)
    {
        if (value <= TimeSpan.Zero)
            throw Error($"{name} ({property}) is {Show(value)}; it must be more than zero.");
    }

    private static void NotNegative(TimeSpan value, string name, string property)
    {
        if (value < TimeSpan.Zero)
            throw Error($"{name} ({property}) is {Show(value)}; it must not be negative (zero turns it off).");
    }

    private static KeepAliveConfigurationException Error(string message) => new("Invalid NHKeepAlive options: " + message);

    internal static string Show(TimeSpan value) =>
        value.TotalSeconds >= 1 && value.Milliseconds == 0 ? $"{value.TotalSeconds:0.###} s" : $"{value.TotalMilliseconds:0.###} ms";
}
