using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.Globalization;
using System.Threading;
using NHibernate;
using NHibernate.Cfg;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate;

/// <summary>Installs NHKeepAlive on an NHibernate <see cref="Configuration"/>.</summary>
public static class KeepAliveConfiguration
{
    /// <summary>The <c>connection.provider</c> value that selects NHKeepAlive.</summary>
    public static readonly string ProviderTypeName = typeof(KeepAliveConnectionProvider).AssemblyQualifiedName!;

    private static readonly INHibernateLogger s_log = NHibernateLogger.For(typeof(KeepAliveConfiguration));

    /// <summary>
    /// Makes <paramref name="configuration"/> use NHKeepAlive: sets <c>connection.provider</c> (which
    /// installs a driver that protects held connections, chosen as
    /// <see cref="KeepAliveConnectionProvider"/> describes), sets <c>sql_exception_converter</c> to
    /// <see cref="KeepAliveSqlExceptionConverter"/> (so that the errors statements meet reach the pool:
    /// a node error leaves that node at once) unless the configuration names a converter of its own,
    /// and passes the options (including ones that are not strings, such as the logger factory) to the provider.
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
        InstallExceptionConverter(configuration);

        // connection.driver_class is left as it is: the provider decides the driver in one place
        // (KeepAliveDriverDecision), from these options as appSettings and properties amend them.
        configuration.SetProperty(KeepAliveProperties.OptionsReference, KeepAliveOptionsRegistry.Register(options));
        return configuration;
    }

    /// <summary>
    /// <see cref="UseKeepAlive"/>, plus NHibernate's multi-tenancy with a database per tenant: sets
    /// <c>multi_tenancy.strategy</c> to <c>Database</c> and <c>multi_tenancy.connection_provider</c> to
    /// <see cref="KeepAliveMultiTenancyConnectionProvider"/>, whose tenant's connection string is the configured one
    /// naming the tenant identifier as its database. Open a tenant's session with
    /// <c>factory.WithOptions().Tenant(new TenantConfiguration("tenant_id")).OpenSession()</c>.
    /// </summary>
    /// <param name="configuration">The NHibernate configuration.</param>
    /// <param name="configure">Sets options on top of the defaults and any <c>nhkeepalive.*</c> properties (every tenant's pool is built from them).</param>
    /// <returns>The configuration.</returns>
    public static Configuration UseKeepAliveMultiTenancy(this Configuration configuration, Action<KeepAliveOptions>? configure = null) =>
        UseKeepAliveMultiTenancy<KeepAliveMultiTenancyConnectionProvider>(configuration, configure);

    /// <summary>
    /// <see cref="UseKeepAliveMultiTenancy(Configuration, Action{KeepAliveOptions})"/> with a multi-tenancy provider of
    /// the application's own, derived from <see cref="KeepAliveMultiTenancyConnectionProvider"/> (to map tenants to
    /// connection strings another way).
    /// </summary>
    /// <typeparam name="TProvider">The multi-tenancy connection provider.</typeparam>
    /// <param name="configuration">The NHibernate configuration.</param>
    /// <param name="configure">Sets options on top of the defaults and any <c>nhkeepalive.*</c> properties.</param>
    /// <returns>The configuration.</returns>
    public static Configuration UseKeepAliveMultiTenancy<TProvider>(this Configuration configuration, Action<KeepAliveOptions>? configure = null)
        where TProvider : KeepAliveMultiTenancyConnectionProvider, new()
    {
        UseKeepAlive(configuration, configure);
        configuration.SetProperty(Environment.MultiTenancy, nameof(global::NHibernate.MultiTenancy.MultiTenancyStrategy.Database));
        configuration.SetProperty(Environment.MultiTenancyConnectionProvider, typeof(TProvider).AssemblyQualifiedName);
        return configuration;
    }

    /// <summary>Sets <c>sql_exception_converter</c> to NHKeepAlive's, unless the configuration names another (which is kept, with a warning).</summary>
    private static void InstallExceptionConverter(Configuration configuration)
    {
        var configured = configuration.GetProperty(Environment.SqlExceptionConverter);
        if (string.IsNullOrWhiteSpace(configured))
        {
            configuration.SetProperty(Environment.SqlExceptionConverter, KeepAliveSqlExceptionConverter.TypeName);
            return;
        }

        if (IsKeepAliveConverter(configured!))
            return;
        s_log.Warn(
            "NHKeepAlive: '{0}' is {1}, which is kept; the errors statements meet do not reach the pool, so a node that refuses queries or is read-only is left only when validation or the keepalive finds it. Derive the converter from {2} to have both.",
            Environment.SqlExceptionConverter, configured!, typeof(KeepAliveSqlExceptionConverter).FullName!);
    }

    private static bool IsKeepAliveConverter(string typeName)
    {
        if (string.Equals(typeName.Split(',')[0].Trim(), typeof(KeepAliveSqlExceptionConverter).FullName, StringComparison.Ordinal))
            return true;
        try
        {
            return typeof(KeepAliveSqlExceptionConverter).IsAssignableFrom(global::NHibernate.Util.ReflectHelper.ClassForName(typeName));
        }
#pragma warning disable CA1031 // A converter that cannot be loaded is NHibernate's error to report.
        catch (Exception)
#pragma warning restore CA1031
        {
            return false;
        }
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
