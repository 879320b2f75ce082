using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace NHKeepAlive.Diagnostics;

/// <summary>
/// The pool's <see cref="System.Diagnostics.Metrics"/> instruments on the meter named
/// <see cref="KeepAlivePool.MeterName"/>, each tagged with <c>pool.name</c>.
/// </summary>
internal sealed class PoolMetrics : IDisposable
{
    private readonly Meter _meter;
    private readonly KeyValuePair<string, object?> _poolTag;
    private readonly Histogram<double> _acquireTime;
    private readonly Counter<long> _validations;
    private readonly Counter<long> _evictions;
    private readonly Counter<long> _keepAlivePings;
    private readonly Counter<long> _created;
    private readonly Counter<long> _timeouts;

    public PoolMetrics(string poolName, Func<PoolStatistics> statistics)
    {
        _meter = new Meter(KeepAlivePool.MeterName, typeof(PoolMetrics).Assembly.GetName().Version?.ToString());
        _poolTag = new KeyValuePair<string, object?>("pool.name", poolName);
        var poolTag = _poolTag;
        _meter.CreateObservableUpDownCounter("nhkeepalive.connections", () =>
        {
            var s = statistics();
            return new[]
            {
                new Measurement<int>(s.Idle, poolTag, new KeyValuePair<string, object?>("state", "idle")),
                new Measurement<int>(s.Active, poolTag, new KeyValuePair<string, object?>("state", "active")),
            };
        }, "{connection}", "Open physical connections by state.");
        _meter.CreateObservableUpDownCounter("nhkeepalive.pending_requests", () => new Measurement<int>(statistics().Pending, poolTag), "{request}", "Callers waiting for a connection.");
        _meter.CreateObservableUpDownCounter("nhkeepalive.connections.max", () => new Measurement<int>(statistics().MaxPoolSize, poolTag), "{connection}", "The pool's maximum size.");
        _acquireTime = _meter.CreateHistogram<double>("nhkeepalive.acquire_time", "ms", "Time to check a connection out, validation included.");
        _validations = _meter.CreateCounter<long>("nhkeepalive.validations", "{validation}", "Checkout validations by result (ok, failed, timeout).");
        _evictions = _meter.CreateCounter<long>("nhkeepalive.evictions", "{connection}", "Connections closed by the pool, by reason.");
        _keepAlivePings = _meter.CreateCounter<long>("nhkeepalive.keepalive_pings", "{ping}", "Keepalive pings of idle connections by result (ok, failed, timeout).");
        _created = _meter.CreateCounter<long>("nhkeepalive.connections.created", "{connection}", "Physical connections opened.");
        _timeouts = _meter.CreateCounter<long>("nhkeepalive.timeouts", "{request}", "Callers that gave up waiting for a connection.");
    }

    public void Acquired(TimeSpan elapsed) => _acquireTime.Record(elapsed.TotalMilliseconds, _poolTag);

    public void Validated(string result) => _validations.Add(1, _poolTag, new KeyValuePair<string, object?>("result", result));

    public void Evicted(EvictionReason reason) => _evictions.Add(1, _poolTag, new KeyValuePair<string, object?>("reason", reason.ToString()));

    public void KeepAlivePinged(string result) => _keepAlivePings.Add(1, _poolTag, new KeyValuePair<string, object?>("result", result));

    public void Created() => _created.Add(1, _poolTag);

    public void TimedOut() => _timeouts.Add(1, _poolTag);

    public void Dispose() => _meter.Dispose();
}
