using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace NHKeepAlive.Hosting.Tests;

[TestFixture]
public sealed class OpenTelemetryTests
{
    [Test]
    public void The_db_client_connection_instruments_arrive_with_the_pool_name_tag()
    {
        var exported = new List<Metric>();
        using var meterProvider = Sdk.CreateMeterProviderBuilder()
            .AddKeepAliveInstrumentation()
            .AddInMemoryExporter(exported)
            .Build();

        var services = new ServiceCollection();
        services.AddKeepAliveDataSource(HostedPools.ConnectionString, o => { o.PoolName = "otel-test"; o.ShutdownGracePeriod = TimeSpan.Zero; });
        using (var provider = services.BuildServiceProvider())
        {
            var dataSource = provider.GetRequiredService<KeepAliveDataSource>();
            for (var i = 0; i < 3; i++)
            {
                using var connection = dataSource.OpenConnection();
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT 1";
                command.ExecuteScalar();
            }

            meterProvider.ForceFlush();
        }

        var names = exported.Select(m => m.Name).Distinct().ToList();
        TestContext.Out.WriteLine(string.Join(", ", names));
        Assert.That(names, Is.SupersetOf(new[]
        {
            "db.client.connection.count", "db.client.connection.max", "db.client.connection.pending_requests",
            "db.client.connection.create_time", "db.client.connection.wait_time", "db.client.connection.use_time",
        }));
        foreach (var metric in exported.Where(m => m.Name.StartsWith("db.client.connection.", StringComparison.Ordinal)))
        {
            var tagged = false;
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                foreach (var tag in point.Tags)
                {
                    if (tag.Key == "db.client.connection.pool.name" && Equals(tag.Value, "otel-test"))
                        tagged = true;
                }
            }

            Assert.That(tagged, Is.True, $"{metric.Name} carries db.client.connection.pool.name=otel-test");
        }

    }
}
