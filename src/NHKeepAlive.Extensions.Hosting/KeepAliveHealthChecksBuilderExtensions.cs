using System;
using System.Collections.Generic;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using NHKeepAlive;
using NHKeepAlive.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary><c>services.AddHealthChecks().AddKeepAliveHealthCheck()</c>: see <see cref="KeepAliveHealthCheck"/>.</summary>
public static class KeepAliveHealthChecksBuilderExtensions
{
    /// <summary>The default name of the check.</summary>
    public const string DefaultName = "nhkeepalive";

    /// <summary>
    /// Adds a check of the registered <see cref="KeepAliveDataSource"/>'s pool (or, without one, of a
    /// registered <see cref="KeepAlivePool"/>, which <c>AddKeepAliveNHibernate</c> registers).
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The check's name.</param>
    /// <param name="failureStatus">What to report when no server answers; default <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by (e.g. "ready").</param>
    /// <param name="timeout">The bound on taking and pinging one connection; default 5 s.</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddKeepAliveHealthCheck(
        this IHealthChecksBuilder builder,
        string name = DefaultName,
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null,
        TimeSpan? timeout = null) =>
        builder.AddKeepAliveHealthCheck(DefaultPool, name, failureStatus, tags, timeout);

    /// <summary>Adds a check of the pool that <paramref name="pool"/> picks from the services.</summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="pool">Picks the pool to check.</param>
    /// <param name="name">The check's name.</param>
    /// <param name="failureStatus">What to report when no server answers; default <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by (e.g. "ready").</param>
    /// <param name="timeout">The bound on taking and pinging one connection; default 5 s.</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddKeepAliveHealthCheck(
        this IHealthChecksBuilder builder,
        Func<IServiceProvider, KeepAlivePool> pool,
        string name = DefaultName,
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null,
        TimeSpan? timeout = null)
    {
        if (builder is null)
            throw new ArgumentNullException(nameof(builder));
        if (pool is null)
            throw new ArgumentNullException(nameof(pool));
        var bound = timeout ?? KeepAliveHealthCheck.DefaultTimeout;
        return builder.Add(new HealthCheckRegistration(
            name,
            provider => new KeepAliveHealthCheck(pool(provider), bound),
            failureStatus,
            tags));
    }

    private static KeepAlivePool DefaultPool(IServiceProvider provider) =>
        provider.GetService<KeepAliveDataSource>()?.Pool
        ?? provider.GetService<KeepAlivePool>()
        ?? throw new InvalidOperationException("AddKeepAliveHealthCheck found no KeepAliveDataSource nor KeepAlivePool among the services: call services.AddKeepAliveDataSource(...) (or AddKeepAliveNHibernate), or pass the pool to check.");
}
