using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.Linq;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

[TestFixture]
public class MetricsTests
{
    [Test]
    public void The_pool_publishes_connections_by_state_acquire_time_validations_and_evictions_by_reason()
    {
        var measurements = new ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == KeepAlivePool.MeterName)
                l.EnableMeasurementEvents(instrument);
        };
        void Record<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
            where T : struct =>
            measurements.Enqueue((instrument.Name, Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture), tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
        listener.SetMeasurementEventCallback<int>(Record);
        listener.SetMeasurementEventCallback<long>(Record);
        listener.SetMeasurementEventCallback<double>(Record);
        listener.Start();

        using var f = new FakePoolFixture(o => o.PoolName = "metrics-test");
        var a = f.Pool.Rent();
        var b = f.Pool.Rent();
        var physicalA = a.Physical();
        f.Pool.Return(a);
        f.Dead.Add(physicalA);
        f.Time.Advance(TimeSpan.FromSeconds(1));
        var c = f.Pool.Rent(); // validates a, finds it dead, opens another
        listener.RecordObservableInstruments();

        var mine = measurements.Where(m => m.Tags.TryGetValue("db.client.connection.pool.name", out var name) && Equals(name, "metrics-test")).ToList();
        double Last(string instrument, string tag, string value) =>
            mine.Where(m => m.Instrument == instrument && Equals(m.Tags[tag], value)).Select(m => m.Value).Last();
        Assert.That(Last("db.client.connection.count", "db.client.connection.state", "used"), Is.EqualTo(2));
        Assert.That(Last("db.client.connection.count", "db.client.connection.state", "idle"), Is.Zero);
        Assert.That(mine.Count(m => m.Instrument == "db.client.connection.wait_time"), Is.EqualTo(3));
        Assert.That(mine.Count(m => m.Instrument == "db.client.connection.create_time"), Is.EqualTo(3));
        Assert.That(mine.Count(m => m.Instrument == "db.client.connection.use_time"), Is.EqualTo(1));
        Assert.That(mine.Single(m => m.Instrument == "db.client.connection.max").Value, Is.EqualTo(f.Options.MaxPoolSize));
        Assert.That(Last("nhkeepalive.connection.validations", "nhkeepalive.result", "failed"), Is.EqualTo(1));
        Assert.That(Last("nhkeepalive.connection.evictions", "nhkeepalive.eviction.reason", "ValidationFailed"), Is.EqualTo(1));
        Assert.That(Last("nhkeepalive.connection.evictions", "nhkeepalive.eviction.reason", "MaxLifetime"), Is.Zero);
        Assert.That(mine.Single(m => m.Instrument == "nhkeepalive.connection.created").Value, Is.EqualTo(3));

        // The meter and the statistics read the same counters.
        var stats = f.Pool.GetStatistics();
        Assert.That((stats.Created, stats.Evicted, stats.ValidationFailures), Is.EqualTo((3L, 1L, 1L)));
        f.Pool.Return(b);
        f.Pool.Return(c);
    }
}
