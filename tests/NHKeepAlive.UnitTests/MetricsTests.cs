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

    /// <summary>A pool per tenant costs no meter of its own: the one meter's instruments observe every live pool, and a disposed one no more.</summary>
    [Test]
    public void Pools_share_one_meter_and_a_disposed_pool_is_no_longer_measured()
    {
        var published = new ConcurrentQueue<Instrument>();
        var seen = new ConcurrentQueue<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name != KeepAlivePool.MeterName)
                return;
            published.Enqueue(instrument);
            l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<int>((instrument, _, tags, _) =>
        {
            if (instrument.Name == "db.client.connection.max")
                seen.Enqueue((string)tags.ToArray().Single(t => t.Key == "db.client.connection.pool.name").Value!);
        });
        listener.Start();

        using var first = new FakePoolFixture(o => o.PoolName = "tenant-1");
        var second = new FakePoolFixture(o => o.PoolName = "tenant-2");
        Assert.That(published.Select(i => i.Meter).Distinct().Count(), Is.EqualTo(1), "one meter");
        Assert.That(published.Count(i => i.Name == "db.client.connection.max"), Is.EqualTo(1), "each instrument published once, whatever the pools");

        listener.RecordObservableInstruments();
        Assert.That(seen, Is.SupersetOf(new[] { "tenant-1", "tenant-2" }), "both pools measured");

        second.Dispose();
        while (seen.TryDequeue(out _))
        {
        }

        listener.RecordObservableInstruments();
        Assert.That(seen, Does.Contain("tenant-1"));
        Assert.That(seen, Does.Not.Contain("tenant-2"), "a disposed pool is no longer measured");
    }
}
