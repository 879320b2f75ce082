using System;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NHKeepAlive;
using NHKeepAlive.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// <c>services.AddKeepAliveDataSource(...)</c>: one <see cref="KeepAliveDataSource"/> (and, on .NET 7 and
/// later, <c>System.Data.Common.DbDataSource</c>) as a singleton, built when the host starts and disposed
/// with it, as MySqlConnector's <c>AddMySqlDataSource</c> and Npgsql's <c>AddNpgsqlDataSource</c> do.
/// </summary>
public static class KeepAliveServiceCollectionExtensions
{
    /// <summary>Registers a data source on a pool for <paramref name="connectionString"/>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="connectionString">The MySQL or MariaDB connection string.</param>
    /// <param name="configure">Sets options in code (the logger factory defaults to the host's).</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddKeepAliveDataSource(this IServiceCollection services, string connectionString, Action<KeepAliveOptions>? configure = null)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new KeepAliveConfigurationException("AddKeepAliveDataSource was given no connection string.");
        return services.AddKeepAliveDataSource((_, options) =>
        {
            options.ConnectionString = connectionString;
            configure?.Invoke(options);
        });
    }

    /// <summary>
    /// Registers a data source whose options, connection string included, are read from a configuration
    /// section (see <see cref="KeepAliveConfigurationBinder"/> for the names and forms), e.g.
    /// <c>{ "ConnectionString": "...", "MaxPoolSize": 20, "KeepAliveInterval": "2m" }</c>. The section is
    /// read once, when the host starts: a later reload of the file does not change the running pool.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section, e.g. <c>builder.Configuration.GetSection("NHKeepAlive")</c>.</param>
    /// <param name="configure">Sets options in code first; the section's values then override them, as files override code elsewhere in NHKeepAlive.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddKeepAliveDataSource(this IServiceCollection services, IConfiguration configuration, Action<KeepAliveOptions>? configure = null)
    {
        if (configuration is null)
            throw new ArgumentNullException(nameof(configuration));
        return services.AddKeepAliveDataSource((_, options) =>
        {
            configure?.Invoke(options);
            KeepAliveConfigurationBinder.Bind(options, configuration);
        });
    }

    /// <summary>
    /// Registers a data source whose options are made by <paramref name="configure"/> when the host starts
    /// (with the service provider at hand, e.g. to read a connection string from a secret store).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Fills the options; the logger factory defaults to the host's.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddKeepAliveDataSource(this IServiceCollection services, Action<IServiceProvider, KeepAliveOptions> configure)
    {
        if (services is null)
            throw new ArgumentNullException(nameof(services));
        if (configure is null)
            throw new ArgumentNullException(nameof(configure));
        services.TryAddSingleton(provider =>
        {
            var options = new KeepAliveOptions();
            configure(provider, options);
            options.LoggerFactory ??= provider.GetService<ILoggerFactory>();
            return new KeepAliveDataSource(options);
        });
#if NET7_0_OR_GREATER
        services.TryAddSingleton<System.Data.Common.DbDataSource>(provider => provider.GetRequiredService<KeepAliveDataSource>());
#endif
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KeepAliveDataSourceStarter>());
        return services;
    }
}
