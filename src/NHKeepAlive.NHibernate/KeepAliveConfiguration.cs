using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.Globalization;
using System.Threading;
using NHibernate.Cfg;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate;

/// <summary>Installs NHKeepAlive on an NHibernate <see cref="Configuration"/>.</summary>
public static class KeepAliveConfiguration
{
    /// <summary>The <c>connection.provider</c> value that selects NHKeepAlive.</summary>
    public static readonly string ProviderTypeName = typeof(KeepAliveConnectionProvider).AssemblyQualifiedName!;

    /// <summary>
    /// Makes <paramref name="configuration"/> use NHKeepAlive: sets <c>connection.provider</c> (which
    /// installs a driver that protects held connections, chosen as
    /// <see cref="KeepAliveConnectionProvider"/> describes), and passes the options
    /// (including ones that are not strings, such as the logger factory) to the provider.
    /// The connection string comes from the options if set, else from the configuration.
    /// </summary>
    /// <param name="configuration">The NHibernate configuration.</param>
    /// <param name="configure">Sets options on top of the defaults and any <c>nhkeepalive.*</c> properties.</param>
    /// <returns>The configuration.</returns>
    public static Configuration UseKeepAlive(this Configuration configuration, Action<KeepAliveOptions>? configure = null)
    {
        if (configuration is null)
            throw new ArgumentNullException(nameof(configuration));
        // Start from what the configuration already says, options set by an earlier UseKeepAlive included.
        var options = KeepAliveOptionsRegistry.Resolve(configuration.Properties, new NameValueCollection());
        configure?.Invoke(options);
        if (!string.IsNullOrEmpty(options.ConnectionString))
            configuration.SetProperty(Environment.ConnectionString, options.ConnectionString);
        configuration.SetProperty(Environment.ConnectionProvider, ProviderTypeName);

        // connection.driver_class is left as it is: the provider decides the driver in one place
        // (KeepAliveDriverDecision), from these options as appSettings and properties amend them.
        configuration.SetProperty(KeepAliveProperties.OptionsReference, KeepAliveOptionsRegistry.Register(options));
        return configuration;
    }
}

/// <summary>Options made in code, handed to the provider through a string property.</summary>
internal static class KeepAliveOptionsRegistry
{
    private static readonly ConcurrentDictionary<string, KeepAliveOptions> s_options = new(StringComparer.Ordinal);
    private static long s_next;

    public static string Register(KeepAliveOptions options)
    {
        var key = "options-" + Interlocked.Increment(ref s_next).ToString(CultureInfo.InvariantCulture);
        s_options[key] = options.Clone();
        return key;
    }

    /// <summary>
    /// The options for a provider: those registered in code (or the defaults), then <c>nhkeepalive.*</c>
    /// keys of the application's appSettings (web.config / app.config), then <c>nhkeepalive.*</c>
    /// NHibernate properties. Configuration files override code, so operators can tune a deployed site.
    /// </summary>
    public static KeepAliveOptions Resolve(IDictionary<string, string> settings, NameValueCollection? appSettings = null)
    {
        KeepAliveOptions options;
        if (settings.TryGetValue(KeepAliveProperties.OptionsReference, out var key))
        {
            if (!s_options.TryGetValue(key, out var registered))
                throw new KeepAliveConfigurationException($"'{KeepAliveProperties.OptionsReference}' names options that were not registered in this process ({key}); configure NHKeepAlive with UseKeepAlive() or KeepAlive() rather than copying this property.");
            options = registered.Clone();
        }
        else
        {
            options = new KeepAliveOptions();
        }

        KeepAliveAppConfig.ApplyAppSettings(options, appSettings ?? KeepAliveAppConfig.AppSettings());
        return options.ApplyProperties(settings);
    }
}
