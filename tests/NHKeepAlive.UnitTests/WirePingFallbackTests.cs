using System;
using System.Collections.Generic;
using System.Linq;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>
/// A stream judged plain whose server never answers a raw COM_PING (a protocol the pool did not recognise):
/// the pool's own pings give up after a few silent ones and it pings through the driver, instead of closing
/// every idle connection forever.
/// </summary>
[TestFixture]
public class WirePingFallbackTests
{
    [Test]
    public void Silent_wire_pings_send_the_pool_back_to_the_drivers_ping_once_and_say_so_once()
    {
        var pairs = new List<LoopbackPair>();
        try
        {
            using var f = new FakePoolFixture(o =>
            {
                o.ValidationBypassWindow = TimeSpan.Zero; // every checkout validates
                o.ValidationTimeout = TimeSpan.FromMilliseconds(150);
                o.ConnectionTimeout = TimeSpan.FromSeconds(5);
            });
            f.SocketOf = _ =>
            {
                var pair = new LoopbackPair(); // its server side reads nothing and answers nothing
                pairs.Add(pair);
                return (pair.Client.Client, true);
            };

            for (var i = 0; i < KeepAlivePool.SilentWirePingsBeforeGivingUp + 2; i++)
            {
                f.Pool.Rent().Dispose();
                f.Time.Advance(TimeSpan.FromMilliseconds(10)); // past the (zero) bypass window: the next checkout validates
            }

            var statistics = f.Pool.GetStatistics();
            Assert.That(statistics.Evicted, Is.EqualTo(KeepAlivePool.SilentWirePingsBeforeGivingUp), "each silent wire ping cost its connection, until the pool gave up on them");
            Assert.That(f.Log.Messages("WirePingSilent"), Has.Length.EqualTo(1));
            Assert.That(f.Pings, Is.Not.Empty, "then the driver's ping validated the connection");
            Assert.That(f.Pings.Distinct().Count(), Is.EqualTo(1), "one connection, kept: the driver's ping answered");
        }
        finally
        {
            pairs.ForEach(p => p.Dispose());
        }
    }
}
