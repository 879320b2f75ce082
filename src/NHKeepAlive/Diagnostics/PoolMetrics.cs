using System;
using System.Collections.Generic;
using System.Diagnostics.Metrics;

namespace NHKeepAlive.Diagnostics;

/// <summary>
/// The pool's instruments on the meter named <see cref="KeepAlivePool.MeterName"/>. The connection
/// pool instruments carry OpenTelemetry's database client names (<c>db.client.connection.*</c>, tagged
/// <c>db.client.connection.pool.name</c>); the pool's own are <c>nhkeepalive.*</c>. Counters are
/// observed from <see cref="PoolCounters"/>, the one place they are kept.
/// </summary>
internal sealed class PoolMetrics : IDisposable
{
    private const string PoolNameTag = "db.client.connection.pool.name";
#pragma warning disable CA2263 // netstandard2.0 has no generic Enum.GetValues.
    private static readonly EvictionReason[] s_reasons = (EvictionReason[])Enum.GetValues(typeof(EvictionReason));
#pragma warning restore CA2263

    private readonly Meter _meter;
    private readonly KeyValuePair<string, object?> _poolTag;
    private readonly Histogram<double> _createTime;
    private readonly Histogram<double> _waitTime;
    private readonly Histogram<double> _useTime;

    public PoolMetrics(string poolName, int maxPoolSize, int minIdle, Func<PoolStatistics> statistics, PoolCounters counters)
    {
        _meter = new Meter(KeepAlivePool.MeterName, typeof(PoolMetrics).Assembly.GetName().Version?.ToString());
        var pool = _poolTag = new KeyValuePair<string, object?>(PoolNameTag, poolName);
        _meter.CreateObservableUpDownCounter("db.client.connection.count", () =>
        {
            var s = statistics();
            return new[]
            {
                new Measurement<int>(s.Idle, pool, new KeyValuePair<string, object?>("db.client.connection.state", "idle")),
                new Measurement<int>(s.Active, pool, new KeyValuePair<string, object?>("db.client.connection.state", "used")),
            };
        }, "{connection}", "The number of connections that are currently in the state described by the state attribute.");
        _meter.CreateObservableUpDownCounter("db.client.connection.max", () => new Measurement<int>(maxPoolSize, pool), "{connection}", "The maximum number of open connections allowed.");
        _meter.CreateObservableUpDownCounter("db.client.connection.idle.min", () => new Measurement<int>(minIdle, pool), "{connection}", "The minimum number of idle open connections allowed.");
        _meter.CreateObservableUpDownCounter("db.client.connection.pending_requests", () => new Measurement<int>(statistics().Pending, pool), "{request}", "The number of current pending requests for an open connection.");
        _meter.CreateObservableCounter("db.client.connection.timeouts", () => new Measurement<long>(counters.Timeouts, pool), "{timeout}", "The number of connection timeouts that have occurred trying to obtain a connection from the pool.");
        _createTime = _meter.CreateHistogram<double>("db.client.connection.create_time", "s", "The time it took to create a new connection.");
        _waitTime = _meter.CreateHistogram<double>("db.client.connection.wait_time", "s", "The time it took to obtain an open connection from the pool (validation included).");
        _useTime = _meter.CreateHistogram<double>("db.client.connection.use_time", "s", "The time between borrowing a connection and returning it to the pool.");

        _meter.CreateObservableCounter("nhkeepalive.connection.created", () => new Measurement<long>(counters.Created, pool), "{connection}", "Physical connections opened, reopens in place included.");
        _meter.CreateObservableCounter("nhkeepalive.connection.evictions", () =>
        {
            var list = new Measurement<long>[s_reasons.Length];
            for (var i = 0; i < s_reasons.Length; i++)
                list[i] = new Measurement<long>(counters.EvictedFor(s_reasons[i]), pool, new KeyValuePair<string, object?>("nhkeepalive.eviction.reason", s_reasons[i].ToString()));
            return list;
        }, "{connection}", "Physical connections the pool closed, by reason.");
        _meter.CreateObservableCounter("nhkeepalive.connection.validations", () => new[]
        {
            new Measurement<long>(counters.Validations - counters.ValidationFailures, pool, new KeyValuePair<string, object?>("nhkeepalive.result", "ok")),
            new Measurement<long>(counters.ValidationFailures, pool, new KeyValuePair<string, object?>("nhkeepalive.result", "failed")),
        }, "{validation}", "Validation round trips (ping or validation query) by result.");
        _meter.CreateObservableCounter("nhkeepalive.connection.socket_check_failures", () => new Measurement<long>(counters.SocketCheckFailures, pool), "{connection}", "Dead connections found by the socket check, without a round trip.");
        _meter.CreateObservableCounter("nhkeepalive.connection.keepalive_pings", () => new[]
        {
            new Measurement<long>(counters.KeepAlivePings - counters.KeepAliveFailures, pool, new KeyValuePair<string, object?>("nhkeepalive.result", "ok")),
            new Measurement<long>(counters.KeepAliveFailures, pool, new KeyValuePair<string, object?>("nhkeepalive.result", "failed")),
        }, "{ping}", "Keepalive pings of idle connections by result.");
        _meter.CreateObservableCounter("nhkeepalive.connection.reopens", () => new Measurement<long>(counters.Reopened, pool), "{connection}", "Held connections found dead and reopened in place.");
        _meter.CreateObservableCounter("nhkeepalive.connection.session_resets", () => new Measurement<long>(counters.SessionResets, pool), "{connection}", "Returned connections whose session was reset for the next caller.");
        _meter.CreateObservableCounter("nhkeepalive.connection.refused", () => new Measurement<long>(counters.RefusedConnects, pool), "{connection}", "Connects the server refused for a connection limit.");
        _meter.CreateObservableCounter("nhkeepalive.transaction.started_again", () => new Measurement<long>(counters.StartedAgain, pool), "{transaction}", "Transactions that met a dead connection as they began and began again on a live one.");
        _meter.CreateObservableCounter("nhkeepalive.connection.recovered", () => new Measurement<long>(counters.Recovered, pool), "{connection}", "Connections taken back after the application dropped their handle without giving it back.");
    }

    public void Created(TimeSpan elapsed) => _createTime.Record(elapsed.TotalSeconds, _poolTag);

    public void Waited(TimeSpan elapsed) => _waitTime.Record(elapsed.TotalSeconds, _poolTag);

    public void Used(TimeSpan elapsed) => _useTime.Record(elapsed.TotalSeconds, _poolTag);

    public void Dispose() => _meter.Dispose();
}
