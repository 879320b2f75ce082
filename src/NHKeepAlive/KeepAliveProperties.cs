using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace NHKeepAlive;

/// <summary>
/// The names of the string properties that configure NHKeepAlive from hibernate.cfg.xml, web.config
/// or any key/value source. Durations take a unit (<c>500ms</c>, <c>3s</c>, <c>2m</c>, <c>1h</c>),
/// a bare number of seconds (<c>30</c>), or a <see cref="TimeSpan"/> (<c>00:00:30</c>).
/// </summary>
public static class KeepAliveProperties
{
    /// <summary>The prefix that every NHKeepAlive property name starts with.</summary>
    public const string Prefix = "nhkeepalive.";

    /// <summary><see cref="KeepAliveOptions.ConnectionString"/> (normally NHibernate's <c>connection.connection_string</c> is used instead).</summary>
    public const string ConnectionString = Prefix + "connection_string";

    /// <summary><see cref="KeepAliveOptions.Driver"/>: <c>auto</c>, <c>mysql.data</c> or <c>mysqlconnector</c>.</summary>
    public const string Driver = Prefix + "driver";

    /// <summary><see cref="KeepAliveOptions.PoolName"/>.</summary>
    public const string PoolName = Prefix + "pool_name";

    /// <summary><see cref="KeepAliveOptions.MaxPoolSize"/>.</summary>
    public const string MaxPoolSize = Prefix + "max_pool_size";

    /// <summary><see cref="KeepAliveOptions.MinIdle"/>.</summary>
    public const string MinIdle = Prefix + "min_idle";

    /// <summary><see cref="KeepAliveOptions.ConnectionTimeout"/>.</summary>
    public const string ConnectionTimeout = Prefix + "connection_timeout";

    /// <summary><see cref="KeepAliveOptions.ValidationTimeout"/>.</summary>
    public const string ValidationTimeout = Prefix + "validation_timeout";

    /// <summary><see cref="KeepAliveOptions.ValidationBypassWindow"/>.</summary>
    public const string ValidationBypassWindow = Prefix + "validation_bypass_window";

    /// <summary><see cref="KeepAliveOptions.ValidationQuery"/>.</summary>
    public const string ValidationQuery = Prefix + "validation_query";

    /// <summary><see cref="KeepAliveOptions.MaxLifetime"/>.</summary>
    public const string MaxLifetime = Prefix + "max_lifetime";

    /// <summary><see cref="KeepAliveOptions.IdleTimeout"/>.</summary>
    public const string IdleTimeout = Prefix + "idle_timeout";

    /// <summary><see cref="KeepAliveOptions.KeepAliveInterval"/>.</summary>
    public const string KeepAliveInterval = Prefix + "keepalive_interval";

    /// <summary><see cref="KeepAliveOptions.LeakDetectionThreshold"/>.</summary>
    public const string LeakDetectionThreshold = Prefix + "leak_detection_threshold";

    /// <summary><see cref="KeepAliveOptions.SocketCheck"/>: <c>true</c> or <c>false</c>.</summary>
    public const string SocketCheck = Prefix + "socket_check";

    /// <summary><see cref="KeepAliveOptions.AllowReadOnly"/>: <c>true</c> or <c>false</c>.</summary>
    public const string AllowReadOnly = Prefix + "allow_read_only";

    /// <summary><see cref="KeepAliveOptions.SessionReset"/>: <c>auto</c>, <c>always</c> or <c>never</c>.</summary>
    public const string SessionReset = Prefix + "session_reset";

    /// <summary><see cref="KeepAliveOptions.ShutdownGracePeriod"/>.</summary>
    public const string ShutdownGracePeriod = Prefix + "shutdown_grace_period";

    /// <summary>
    /// Set by the NHibernate and Fluent adapters to pass a <see cref="KeepAliveOptions"/> object made
    /// in code (logger factory included) through NHibernate's string properties; not for users.
    /// </summary>
    public const string OptionsReference = Prefix + "options_ref";

    private static readonly Dictionary<string, Action<KeepAliveOptions, string, string>> s_setters =
        new(StringComparer.OrdinalIgnoreCase)
        {
            [ConnectionString] = (o, _, v) => o.ConnectionString = v,
            [Driver] = (o, k, v) => o.Driver = MySqlDriverChoice.Parse(v, k),
            [PoolName] = (o, _, v) => o.PoolName = v,
            [MaxPoolSize] = (o, k, v) => o.MaxPoolSize = ParseInt(k, v),
            [MinIdle] = (o, k, v) => o.MinIdle = ParseInt(k, v),
            [ConnectionTimeout] = (o, k, v) => o.ConnectionTimeout = ParseDuration(k, v),
            [ValidationTimeout] = (o, k, v) => o.ValidationTimeout = ParseDuration(k, v),
            [ValidationBypassWindow] = (o, k, v) => o.ValidationBypassWindow = ParseDuration(k, v),
            [ValidationQuery] = (o, _, v) => o.ValidationQuery = string.IsNullOrWhiteSpace(v) ? null : v,
            [MaxLifetime] = (o, k, v) => o.MaxLifetime = ParseDuration(k, v),
            [IdleTimeout] = (o, k, v) => o.IdleTimeout = ParseDuration(k, v),
            [KeepAliveInterval] = (o, k, v) => o.KeepAliveInterval = ParseDuration(k, v),
            [LeakDetectionThreshold] = (o, k, v) => o.LeakDetectionThreshold = ParseDuration(k, v),
            [SocketCheck] = (o, k, v) => o.SocketCheck = ParseBool(k, v),
            [AllowReadOnly] = (o, k, v) => o.AllowReadOnly = ParseBool(k, v),
            [SessionReset] = (o, k, v) => o.SessionReset = ParseSessionReset(k, v),
            [ShutdownGracePeriod] = (o, k, v) => o.ShutdownGracePeriod = ParseDuration(k, v),
        };

    /// <summary>Every property name NHKeepAlive understands.</summary>
    public static IReadOnlyCollection<string> All { get; } = s_setters.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();

    internal static void Apply(KeepAliveOptions options, string key, string? value)
    {
        if (key is null || !key.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) || string.Equals(key, OptionsReference, StringComparison.OrdinalIgnoreCase))
            return;
        if (!s_setters.TryGetValue(key, out var setter))
        {
            throw new KeepAliveConfigurationException(
                $"Unknown NHKeepAlive property '{key}'. Known properties: {string.Join(", ", All)}.");
        }

        setter(options, key, (value ?? string.Empty).Trim());
    }

    /// <summary>Parses a duration as the properties take it.</summary>
    /// <param name="key">The property name, for the error message.</param>
    /// <param name="value">The text: <c>500ms</c>, <c>3s</c>, <c>2m</c>, <c>1h</c>, a bare number of seconds, or <c>hh:mm:ss</c>.</param>
    /// <returns>The duration.</returns>
    /// <exception cref="KeepAliveConfigurationException">The text is not a duration.</exception>
    public static TimeSpan ParseDuration(string key, string value)
    {
        var text = (value ?? string.Empty).Trim();
        (string suffix, double factorMs)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach (var (suffix, factorMs) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text.Substring(0, text.Length - suffix.Length).Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                && number >= 0 && !double.IsInfinity(number))
            {
                return TimeSpan.FromMilliseconds(number * factorMs);
            }
        }

        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0 && !double.IsInfinity(seconds))
            return TimeSpan.FromSeconds(seconds);
        if (text.Contains(':') && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span) && span >= TimeSpan.Zero)
            return span;
        throw new KeepAliveConfigurationException(
            $"NHKeepAlive property '{key}' has the value '{value}', which is not a duration. Use a number with a unit (500ms, 3s, 2m, 1h), a bare number of seconds, or hh:mm:ss.");
    }

    private static int ParseInt(string key, string value)
    {
        if (int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var result))
            return result;
        throw new KeepAliveConfigurationException($"NHKeepAlive property '{key}' has the value '{value}', which is not a whole number.");
    }

    private static bool ParseBool(string key, string value)
    {
        switch (value.ToUpperInvariant())
        {
            case "TRUE" or "YES" or "ON" or "1":
                return true;
            case "FALSE" or "NO" or "OFF" or "0":
                return false;
            default:
                throw new KeepAliveConfigurationException($"NHKeepAlive property '{key}' has the value '{value}'. Use true or false.");
        }
    }

    private static SessionResetPolicy ParseSessionReset(string key, string value)
    {
        switch (value.ToUpperInvariant())
        {
            case "" or "AUTO":
                return SessionResetPolicy.Auto;
            case "ALWAYS":
                return SessionResetPolicy.Always;
            case "NEVER":
                return SessionResetPolicy.Never;
            default:
                throw new KeepAliveConfigurationException(
                    $"NHKeepAlive property '{key}' has the value '{value}'. Use auto (reset a connection whose session changed; the default), always (reset on every return: one round trip each) or never (the caller keeps session state clean itself).");
        }
    }
}
