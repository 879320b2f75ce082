using System;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using NHibernate;
using NHibernate.Engine;
using NHKeepAlive;
using NHKeepAlive.Extensions.Hosting;
using NHKeepAlive.NHibernate;
using NHKeepAlive.NHibernate.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// <c>services.AddKeepAliveNHibernate(...)</c>: an NHibernate <see cref="ISessionFactory"/> on NHKeepAlive as a
/// singleton (built when the host starts, disposed with it, and with it its pool), a scoped
/// <see cref="ISession"/> (one per request in ASP.NET Core, disposed at its end), and the factory's
/// <see cref="KeepAlivePool"/> (for <c>AddKeepAliveHealthCheck()</c> and statistics).
/// </summary>
public static class KeepAliveNHibernateServiceCollectionExtensions
{
    /// <summary>Registers a session factory on a pool for <paramref name="connectionString"/>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="connectionString">The MySQL or MariaDB connection string.</param>
    /// <param name="configure">Adds the mappings and anything else (<c>b =&gt; b.AddMappings(typeof(Order).Assembly)</c>, <c>b.KeepAlive(o =&gt; ...)</c>, <c>b.Configuration</c>).</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddKeepAliveNHibernate(this IServiceCollection services, string connectionString, Action<KeepAliveSessionFactoryBuilder> configure)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new KeepAliveConfigurationException("AddKeepAliveNHibernate was given no connection string.");
        return services.AddKeepAliveNHibernate(_ => new KeepAliveSessionFactoryBuilder(connectionString), configure);
    }

    /// <summary>
    /// Registers a session factory whose pool options, connection string included, are read from a configuration
    /// section with the names and forms of <see cref="KeepAliveConfigurationBinder"/> (read once, when the host
    /// starts: a reload of the file does not change the running pool). The section's values override options
    /// set in <paramref name="configure"/>, as files override code elsewhere in NHKeepAlive.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section, e.g. <c>builder.Configuration.GetSection("NHKeepAlive")</c>.</param>
    /// <param name="configure">Adds the mappings and anything else.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddKeepAliveNHibernate(this IServiceCollection services, IConfiguration configuration, Action<KeepAliveSessionFactoryBuilder> configure)
    {
        if (configuration is null)
            throw new ArgumentNullException(nameof(configuration));
        return services.AddKeepAliveNHibernate(
            _ =>
            {
                var connectionString = KeepAliveConfigurationBinder.Bind(new KeepAliveOptions(), configuration).ConnectionString;
                if (string.IsNullOrWhiteSpace(connectionString))
                    throw new KeepAliveConfigurationException($"The configuration section '{(configuration as IConfigurationSection)?.Path}' has no ConnectionString for AddKeepAliveNHibernate.");
                return new KeepAliveSessionFactoryBuilder(connectionString!);
            },
            builder =>
            {
                configure?.Invoke(builder);
                builder.KeepAlive(options => KeepAliveConfigurationBinder.Bind(options, configuration));
            });
    }

    private static IServiceCollection AddKeepAliveNHibernate(this IServiceCollection services, Func<IServiceProvider, KeepAliveSessionFactoryBuilder> create, Action<KeepAliveSessionFactoryBuilder> configure)
    {
        if (services is null)
            throw new ArgumentNullException(nameof(services));
        if (configure is null)
            throw new ArgumentNullException(nameof(configure));
        services.TryAddSingleton(provider =>
        {
            var builder = create(provider);

            // The host's logger factory unless the application sets its own (the first action runs first).
            var loggerFactory = provider.GetService<Microsoft.Extensions.Logging.ILoggerFactory>();
            builder.KeepAlive(options => options.LoggerFactory ??= loggerFactory);
            configure(builder);
            return builder.Build();
        });
        services.TryAddSingleton(provider => PoolOf(provider.GetRequiredService<ISessionFactory>()));
        services.TryAddScoped(provider => provider.GetRequiredService<ISessionFactory>().OpenSession());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KeepAliveSessionFactoryStarter>());
        return services;
    }

    private static KeepAlivePool PoolOf(ISessionFactory factory) =>
        (factory as ISessionFactoryImplementor)?.ConnectionProvider is KeepAliveConnectionProvider { Pool: { } pool }
            ? pool
            : throw new InvalidOperationException("The session factory's connection provider is not NHKeepAlive's: its pool cannot be found.");
}
