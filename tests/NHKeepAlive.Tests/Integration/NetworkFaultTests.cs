using System;
using System.Diagnostics;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>What a network that forgets flows does to idle connections, through a loopback proxy.</summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class NetworkFaultTests(MySqlDriver driver) : IntegrationTest(driver)
{
    [Test]
    public void A_blackholed_idle_connection_costs_the_caller_at_most_the_validation_timeout()
    {
        using var proxy = new ChaosProxy(TestServer.Port);
        var validationTimeout = TimeSpan.FromSeconds(1);
        using var pool = CreatePool(o => o.ValidationTimeout = validationTimeout, port: proxy.Port);
        pool.Return(pool.Rent());
        Settled(pool);

        proxy.BlackholeExistingFlows(); // a NAT forgot the flow; new flows pass
        Elapse(TimeSpan.FromMilliseconds(600)); // past the bypass window
        var watch = Stopwatch.StartNew();
        var error = Request(pool);
        watch.Stop();

        TestContext.Progress.WriteLine($"{Driver}: checkout over a blackholed idle connection took {watch.ElapsedMilliseconds} ms");
        Assert.That(error, Is.Null);
        Assert.That(watch.Elapsed, Is.LessThan(validationTimeout + TimeSpan.FromSeconds(1.5)));
        Assert.That(Log.Messages("ConnectionEvicted"), Has.Some.Contain("ValidationTimedOut"));
    }

    [Test]
    public void A_keepalive_ping_on_a_blackholed_connection_is_aborted_and_the_connection_discarded()
    {
        using var proxy = new ChaosProxy(TestServer.Port);
        using var pool = CreatePool(o =>
        {
            o.ValidationTimeout = TimeSpan.FromMilliseconds(500);
            o.KeepAliveInterval = TimeSpan.FromSeconds(1);
            o.ValidationBypassWindow = TimeSpan.FromMilliseconds(200);
        }, port: proxy.Port);
        pool.Return(pool.Rent());
        Settled(pool);

        proxy.BlackholeExistingFlows();
        Eventually(() => pool.GetStatistics().Evicted == 1, TimeSpan.FromSeconds(10), "the keepalive found the blackholed connection and discarded it");
        Assert.That(pool.GetStatistics().Total, Is.Zero);

        Assert.That(Log.Messages("ConnectionEvicted"), Has.Some.Contain("KeepAliveFailed"));
        Assert.That(Request(pool), Is.Null);
    }

    [Test]
    public void A_session_reset_over_a_blackholed_flow_is_bounded_and_frees_its_connection()
    {
        using var proxy = new ChaosProxy(TestServer.Port);
        using var pool = CreatePool(o =>
        {
            o.ValidationTimeout = TimeSpan.FromMilliseconds(500);
            o.SessionReset = SessionResetPolicy.Always;
            o.MaxPoolSize = 1;
        }, port: proxy.Port);
        var held = pool.Rent();
        proxy.BlackholeExistingFlows();

        var watch = Stopwatch.StartNew();
        pool.Return(held); // the reset's round trip goes nowhere
        Eventually(() => pool.GetStatistics().Total == 0, TimeSpan.FromSeconds(5), "the connection whose reset got no answer was closed");
        watch.Stop();

        TestContext.Progress.WriteLine($"{Driver}: a blackholed reset freed its slot after {watch.ElapsedMilliseconds} ms");
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)), "bounded by the validation timeout");
        Assert.That(Log.Messages("ConnectionEvicted"), Has.Some.Contain("CleanupFailed"));
        Assert.That(Request(pool), Is.Null, "the one slot is free again: a new connection serves");
    }
}
