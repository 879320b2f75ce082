using System;
using System.Collections.Generic;

namespace NHKeepAlive;

/// <summary>
/// The names of the string properties that configure NHKeepAlive from hibernate.cfg.xml, web.config
/// or any key/value source. Durations take a unit (<c>500ms</c>, <c>3s</c>, <c>2m</c>, <c>1h</c>),
/// a bare number of seconds (<c>30</c>), or a <see cref="TimeSpan"/> (<c>00:00:30</c>). Each name
/// here is the key of one option declared in <c>Configuration/KeepAliveOptionTable.cs</c> (default,
/// parser, range, doc); this class only spells the names for code that sets them.
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

    /// <summary><see cref="KeepAliveOptions.TenantPoolRetireAfter"/>.</summary>
    public const string TenantPoolRetireAfter = Prefix + "tenant_pool_retire_after";

    /// <summary>
    /// Set by the NHibernate and Fluent adapters to pass a <see cref="KeepAliveOptions"/> object made
    /// in code (logger factory included) through NHibernate's string properties; not for users.
    /// </summary>
    public const string OptionsReference = Prefix + "options_ref";

    /// <summary>Every property name NHKeepAlive understands.</summary>
    public static IReadOnlyCollection<string> All => KeepAliveOptionTable.Names;

    internal static void Apply(KeepAliveOptions options, string key, string? value)
    {
        if (key is null || !key.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) || string.Equals(key, OptionsReference, StringComparison.OrdinalIgnoreCase))
            return;
        if (!KeepAliveOptionTable.TryFind(key, out var option))
        {
            throw new KeepAliveConfigurationException(
                $"Unknown NHKeepAlive property '{key}'. Known properties: {string.Join(", ", All)}.");
        }

        option.Apply(options, key, (value ?? string.Empty).Trim());
    }

    /// <summary>Parses a duration as the properties take it.</summary>
    /// <param name="key">The property name, for the error message.</param>
    /// <param name="value">The text: <c>500ms</c>, <c>3s</c>, <c>2m</c>, <c>1h</c>, a bare number of seconds, or <c>hh:mm:ss</c>.</param>
    /// <returns>The duration.</returns>
    /// <exception cref="KeepAliveConfigurationException">The text is not a duration.</exception>
    public static TimeSpan ParseDuration(string key, string value) => OptionText.ParseDuration(key, value);
}
