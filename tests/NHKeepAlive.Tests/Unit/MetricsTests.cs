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
        f.Pool.Return(a);
        f.Dead.Add(a);
        f.Time.Advance(TimeSpan.FromSeconds(1));
        var c = f.Pool.Rent(); // validates a, finds it dead, opens another
        listener.RecordObservableInstruments();

        var mine = measurements.Where(m => m.Tags.TryGetValue("pool.name", out var name) && Equals(name, "metrics-test")).ToList();
        Assert.That(mine.Where(m => m.Instrument == "nhkeepalive.connections" && Equals(m.Tags["state"], "active")).Select(m => m.Value).Last(), Is.EqualTo(2));
        Assert.That(mine.Where(m => m.Instrument == "nhkeepalive.connections" && Equals(m.Tags["state"], "idle")).Select(m => m.Value).Last(), Is.Zero);
        Assert.That(mine.Count(m => m.Instrument == "nhkeepalive.acquire_time"), Is.EqualTo(3));
        Assert.That(mine.Single(m => m.Instrument == "nhkeepalive.validations").Tags["result"], Is.EqualTo("failed"));
        Assert.That(mine.Single(m => m.Instrument == "nhkeepalive.evictions").Tags["reason"], Is.EqualTo("ValidationFailed"));
        Assert.That(mine.Count(m => m.Instrument == "nhkeepalive.connections.created"), Is.EqualTo(3));
        f.Pool.Return(b);
        f.Pool.Return(c);
    }
}
