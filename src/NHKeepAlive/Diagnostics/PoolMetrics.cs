using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Metrics;

namespace NHKeepAlive.Diagnostics;

/// <summary>
/// One pool's part in the process's one meter, named <see cref="KeepAlivePool.MeterName"/> (as MySqlConnector's pools
/// share theirs): the instruments are created once, and each observes every live pool, tagged with its name, so that a
/// pool per tenant costs no meter and no instruments of its own. The connection pool instruments carry OpenTelemetry's
/// database client names (<c>db.client.connection.*</c>, tagged <c>db.client.connection.pool.name</c>); the pool's own
/// are <c>nhkeepalive.*</c>. Counters are observed from <see cref="PoolCounters"/>, the one place they are kept.
/// </summary>
internal sealed class PoolMetrics : IDisposable
{
    private const string PoolNameTag = "db.client.connection.pool.name";
#pragma warning disable CA2263 // netstandard2.0 has no generic Enum.GetValues.
    private static readonly EvictionReason[] s_reasons = (EvictionReason[])Enum.GetValues(typeof(EvictionReason));
#pragma warning restore CA2263

    /// <summary>The live pools' parts, each observed by the instruments until its pool is disposed.</summary>
    private static readonly ConcurrentDictionary<PoolMetrics, byte> s_pools = new();

    private static readonly Meter s_meter = new(KeepAlivePool.MeterName, typeof(PoolMetrics).Assembly.GetName().Version?.ToString());
    private static readonly Histogram<double> s_createTime = s_meter.CreateHistogram<double>("db.client.connection.create_time", "s", "The time it took to create a new connection.");
    private static readonly Histogram<double> s_waitTime = s_meter.CreateHistogram<double>("db.client.connection.wait_time", "s", "The time it took to obtain an open connection from the pool (validation included).");
    private static readonly Histogram<double> s_useTime = s_meter.CreateHistogram<double>("db.client.connection.use_time", "s", "The time between borrowing a connection and returning it to the pool.");
    private static readonly bool s_observed = CreateObservedInstruments();

    private readonly KeyValuePair<string, object?> _pool;
    private readonly int _maxPoolSize;
    private readonly int _minIdle;
    private readonly Func<PoolStatistics> _statistics;
    private readonly PoolCounters _counters;

    public PoolMetrics(string poolName, int maxPoolSize, int minIdle, Func<PoolStatistics> statistics, PoolCounters counters)
    {
        _ = s_observed;
        _pool = new KeyValuePair<string, object?>(PoolNameTag, poolName);
        _maxPoolSize = maxPoolSize;
        _minIdle = minIdle;
        _statistics = statistics;
        _counters = counters;
        s_pools.TryAdd(this, 0);
    }

    public void Created(TimeSpan elapsed) => s_createTime.Record(elapsed.TotalSeconds, _pool);

    public void Waited(TimeSpan elapsed) => s_waitTime.Record(elapsed.TotalSeconds, _pool);

    public void Used(TimeSpan elapsed) => s_useTime.Record(elapsed.TotalSeconds, _pool);

    /// <summary>The pool is gone: its measurements stop.</summary>
    public void Dispose() => s_pools.TryRemove(this, out _);

    private static bool CreateObservedInstruments()
    {
        s_meter.CreateObservableUpDownCounter("db.client.connection.count", () => Each<int>(static (p, list) =>
        {
            var s = p._statistics();
            list.Add(new Measurement<int>(s.Idle, p._pool, new KeyValuePair<string, object?>("db.client.connection.state", "idle")));
            list.Add(new Measurement<int>(s.Active, p._pool, new KeyValuePair<string, object?>("db.client.connection.state", "used")));
        }), "{connection}", "The number of connections that are currently in the state described by the state attribute.");
        s_meter.CreateObservableUpDownCounter("db.client.connection.max", () => Each<int>(static (p, list) => list.Add(new Measurement<int>(p._maxPoolSize, p._pool))), "{connection}", "The maximum number of open connections allowed.");
        s_meter.CreateObservableUpDownCounter("db.client.connection.idle.min", () => Each<int>(static (p, list) => list.Add(new Measurement<int>(p._minIdle, p._pool))), "{connection}", "The minimum number of idle open connections allowed.");
        s_meter.CreateObservableUpDownCounter("db.client.connection.pending_requests", () => Each<int>(static (p, list) => list.Add(new Measurement<int>(p._statistics().Pending, p._pool))), "{request}", "The number of current pending requests for an open connection.");
        Counter("db.client.connection.timeouts", static c => c.Timeouts, "{timeout}", "The number of connection timeouts that have occurred trying to obtain a connection from the pool.");

        Counter("nhkeepalive.connection.created", static c => c.Created, "{connection}", "Physical connections opened, reopens in place included.");
        s_meter.CreateObservableCounter("nhkeepalive.connection.evictions", () => Each<long>(static (p, list) =>
        {
            foreach (var reason in s_reasons)
                list.Add(new Measurement<long>(p._counters.EvictedFor(reason), p._pool, new KeyValuePair<string, object?>("nhkeepalive.eviction.reason", reason.ToString())));
        }), "{connection}", "Physical connections the pool closed, by reason.");
        s_meter.CreateObservableCounter("nhkeepalive.connection.validations", () => Each<long>(static (p, list) =>
        {
            list.Add(new Measurement<long>(p._counters.Validations - p._counters.ValidationFailures, p._pool, new KeyValuePair<string, object?>("nhkeepalive.result", "ok")));
            list.Add(new Measurement<long>(p._counters.ValidationFailures, p._pool, new KeyValuePair<string, object?>("nhkeepalive.result", "failed")));
        }), "{validation}", "Validation round trips (ping or validation query) by result.");
        Counter("nhkeepalive.connection.socket_check_failures", static c => c.SocketCheckFailures, "{connection}", "Dead connections found by the socket check, without a round trip.");
        s_meter.CreateObservableCounter("nhkeepalive.connection.keepalive_pings", () => Each<long>(static (p, list) =>
        {
            list.Add(new Measurement<long>(p._counters.KeepAlivePings - p._counters.KeepAliveFailures, p._pool, new KeyValuePair<string, object?>("nhkeepalive.result", "ok")));
            list.Add(new Measurement<long>(p._counters.KeepAliveFailures, p._pool, new KeyValuePair<string, object?>("nhkeepalive.result", "failed")));
        }), "{ping}", "Keepalive pings of idle connections by result.");
        Counter("nhkeepalive.connection.reopens", static c => c.Reopened, "{connection}", "Held connections found dead and reopened in place.");
        Counter("nhkeepalive.connection.session_resets", static c => c.SessionResets, "{connection}", "Returned connections whose session was reset for the next caller.");
        Counter("nhkeepalive.connection.refused", static c => c.RefusedConnects, "{connection}", "Connects the server refused for a connection limit.");
        Counter("nhkeepalive.transaction.started_again", static c => c.StartedAgain, "{transaction}", "Transactions that met a dead connection as they began and began again on a live one.");
        Counter("nhkeepalive.connection.recovered", static c => c.Recovered, "{connection}", "Connections taken back after the application dropped their handle without giving it back.");
        return true;
    }

    /// <summary>An observable counter of one <see cref="PoolCounters"/> value, one measurement per live pool.</summary>
    private static void Counter(string name, Func<PoolCounters, long> value, string unit, string description) =>
        s_meter.CreateObservableCounter(name, () => Each<long>((p, list) => list.Add(new Measurement<long>(value(p._counters), p._pool))), unit, description);

    /// <summary>What <paramref name="measure"/> adds for each live pool.</summary>
    private static List<Measurement<T>> Each<T>(Action<PoolMetrics, List<Measurement<T>>> measure)
        where T : struct
    {
        var list = new List<Measurement<T>>();
        foreach (var pool in s_pools.Keys)
            measure(pool, list);
        return list;
    }
}
