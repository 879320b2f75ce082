using System;
using System.Threading.Tasks;
using Dapper;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using NHKeepAlive;
using NHKeepAlive.AspNetCoreSample;
#if WITH_NHIBERNATE
using NHKeepAlive.AspNetCoreSample.NHibernate;
#endif
using OpenTelemetry.Metrics;

var builder = WebApplication.CreateBuilder(args);

// The three lines: the data source (options from appsettings.json's "NHKeepAlive" section), the health
// check, and the pool's metrics for OpenTelemetry (add the exporter of your choice, e.g. AddOtlpExporter()).
builder.Services.AddKeepAliveDataSource(builder.Configuration.GetSection("NHKeepAlive"));
builder.Services.AddHealthChecks().AddKeepAliveHealthCheck();
builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddKeepAliveInstrumentation());
#if WITH_NHIBERNATE
NHibernateSetup.Add(builder);
#endif

var app = builder.Build();

app.MapHealthChecks("/health", new HealthCheckOptions { ResponseWriter = HealthReportWriter.WriteAsync });

// A unit of work through the data source: a transaction that writes a row and reads the count back.
app.MapGet("/", async (KeepAliveDataSource dataSource) =>
{
    await using var connection = await dataSource.OpenConnectionAsync();
    await connection.ExecuteAsync("CREATE TABLE IF NOT EXISTS sample_visit (id BIGINT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL)");
    await using var transaction = await connection.BeginTransactionAsync();
    await connection.ExecuteAsync("INSERT INTO sample_visit (at) VALUES (@at)", new { at = DateTime.UtcNow }, transaction);
    var visits = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM sample_visit", transaction: transaction);
    await transaction.CommitAsync();
    return Results.Text($"visits: {visits}\n");
});

// The pool's state, as GetStatistics() gives it.
app.MapGet("/stats", (KeepAliveDataSource dataSource) => Results.Text(dataSource.Pool.GetStatistics() + "\n"));

#if WITH_NHIBERNATE
NHibernateSetup.Map(app);
#endif

await app.RunAsync();

/// <summary>The sample's entry point (public, so that tests can start it with <c>WebApplicationFactory&lt;Program&gt;</c>).</summary>
public partial class Program
{
    /// <summary>Not for use: the class exists for <c>WebApplicationFactory&lt;Program&gt;</c>.</summary>
    protected Program()
    {
    }
}
