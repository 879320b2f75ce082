using System;
using System.Collections.Generic;
using System.Data.Common;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace NHKeepAlive.Extensions.Hosting;

/// <summary>
/// A health check of one <see cref="KeepAlivePool"/>, for a load balancer or a Kubernetes probe. It reads
/// the pool's statistics first and never competes with the application for a connection:
/// <list type="bullet">
/// <item><b>Degraded</b>, without touching the server, while callers wait for a connection (<c>Pending</c> &gt; 0).</item>
/// <item>When every connection is on loan and nobody waits: <b>Healthy</b> from the statistics alone (the
/// connections are in use; taking one would make a caller wait), <b>Degraded</b> if hosts of a list are left.</item>
/// <item>Otherwise it takes a connection (an idle one, or a new one while capacity remains) within the
/// bound, runs <c>SELECT 1</c> on it and gives it back: <b>Healthy</b>; <b>Degraded</b> if hosts of a list
/// are left (the pool runs on the others); the registration's failure status (<b>Unhealthy</b> by default)
/// when no server answers within the bound.</item>
/// </list>
/// The result's data carries the pool's name (<c>pool</c>), <c>active</c>, <c>idle</c>, <c>opening</c>, <c>checking</c>,
/// <c>pending</c>, <c>max</c> and <c>hosts</c> (each host:port, healthy or left and why); never the
/// connection string. Between reading the statistics and taking a connection another caller may fill the
/// pool: the check then waits at most its bound, in line with the callers.
/// </summary>
public sealed class KeepAliveHealthCheck : IHealthCheck
{
    /// <summary>The default bound on taking and pinging one connection: 5 s.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private readonly KeepAlivePool _pool;
    private readonly TimeSpan _timeout;

    /// <summary>A check of <paramref name="pool"/>.</summary>
    /// <param name="pool">The pool.</param>
    /// <param name="timeout">The bound on taking and pinging one connection.</param>
    public KeepAliveHealthCheck(KeepAlivePool pool, TimeSpan timeout)
    {
        _pool = pool ?? throw new ArgumentNullException(nameof(pool));
        if (timeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The health check's timeout must be more than zero.");
        _timeout = timeout;
    }

    /// <inheritdoc />
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var failure = context?.Registration?.FailureStatus ?? HealthStatus.Unhealthy;
        var before = _pool.GetStatistics();
        if (before.Pending > 0)
            return new HealthCheckResult(HealthStatus.Degraded, $"{before.Pending} caller(s) waiting for a connection ({before}); the server was not probed", data: Data(before));
        if (before.Idle == 0 && before.Active + before.Opening + before.Checking >= before.MaxPoolSize)
            return Judged(before, "every connection is in use and no caller waits; the server was not probed");

        try
        {
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            bound.CancelAfter(_timeout);
            var connection = await _pool.RentAsync(bound.Token).ConfigureAwait(false);
            try
            {
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT 1";
                command.CommandTimeout = Math.Max(1, (int)Math.Ceiling(_timeout.TotalSeconds));
                await command.ExecuteScalarAsync(bound.Token).ConfigureAwait(false);
            }
            finally
            {
                connection.Dispose();
            }
        }
        catch (PoolTimeoutException e)
        {
            var now = _pool.GetStatistics();
            return new HealthCheckResult(HealthStatus.Degraded, $"no connection came free: every connection is in use ({now})", e, Data(now));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            var now = _pool.GetStatistics();
            return new HealthCheckResult(failure, $"no server answered within {_timeout.TotalSeconds:0.###} s ({Hosts(now)})", data: Data(now));
        }
        catch (DbException e)
        {
            // ConnectException (no server answered, wrong password, ...) or the ping failed. Their messages carry no credential.
            var now = _pool.GetStatistics();
            return new HealthCheckResult(failure, $"no server answered: {e.Message}", e, Data(now));
        }
        catch (ObjectDisposedException e)
        {
            return new HealthCheckResult(failure, "the pool is disposed", e, Data(before));
        }

        return Judged(_pool.GetStatistics(), "a connection was taken and answered SELECT 1");
    }

    private HealthCheckResult Judged(PoolStatistics statistics, string what)
    {
        var left = statistics.Hosts.Where(h => !h.Healthy).ToList();
        if (left.Count > 0)
            return new HealthCheckResult(HealthStatus.Degraded, $"{what}; {left.Count} of {statistics.Hosts.Count} host(s) left: {string.Join("; ", left)}", data: Data(statistics));
        return new HealthCheckResult(HealthStatus.Healthy, what, data: Data(statistics));
    }

    private static string Hosts(PoolStatistics statistics) => string.Join("; ", statistics.Hosts);

    private Dictionary<string, object> Data(PoolStatistics statistics) => new()
    {
        ["pool"] = _pool.Name,
        ["active"] = statistics.Active,
        ["idle"] = statistics.Idle,
        ["opening"] = statistics.Opening,
        ["checking"] = statistics.Checking,
        ["pending"] = statistics.Pending,
        ["max"] = statistics.MaxPoolSize,
        ["hosts"] = Hosts(statistics),
    };
}
