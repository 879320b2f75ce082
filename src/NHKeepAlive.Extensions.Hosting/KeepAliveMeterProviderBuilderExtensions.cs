using System;
using NHKeepAlive;

namespace OpenTelemetry.Metrics;

/// <summary><c>metrics.AddKeepAliveInstrumentation()</c>: NHKeepAlive's meter in one line.</summary>
public static class KeepAliveMeterProviderBuilderExtensions
{
    /// <summary>
    /// Adds the <c>NHKeepAlive</c> meter (<see cref="KeepAlivePool.MeterName"/>): OpenTelemetry's
    /// <c>db.client.connection.*</c> instruments and the pool's own <c>nhkeepalive.*</c> ones, each tagged
    /// <c>db.client.connection.pool.name</c>. NHKeepAlive has no traces of its own.
    /// </summary>
    /// <param name="builder">The meter provider builder.</param>
    /// <returns>The builder.</returns>
    public static MeterProviderBuilder AddKeepAliveInstrumentation(this MeterProviderBuilder builder)
    {
        if (builder is null)
            throw new ArgumentNullException(nameof(builder));
        return builder.AddMeter(KeepAlivePool.MeterName);
    }
}
