using System;
using System.Diagnostics;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>Faults that hit a connection a caller holds: that caller sees the error, nobody else does.</summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class InUseFaultTests(MySqlDriver driver) : IntegrationTest(driver)
{
    [Test]
    public void A_kill_of_a_connection_in_use_reaches_exactly_that_caller_and_the_next_checkout_works()
    {
        using var pool = CreatePool();
        var victim = pool.Lease();
        var bystander = pool.Lease();
        var victimId = ConnectionId(victim.Connection);
        var bystanderId = ConnectionId(bystander.Connection);

        Admin.Kill(victimId);
        var error = Assert.Catch(() => Scalar(victim.Connection, "SELECT 1"))!;
        victim.ReportFailure(error);
        victim.Dispose();

        TestContext.Progress.WriteLine($"{Driver}, KILL of a held connection: {Describe(error)}");
        Assert.That(DisconnectClassifier.IsDisconnect(error), Is.True, Describe(error));
        Assert.That(ConnectionId(bystander.Connection), Is.EqualTo(bystanderId), "the other caller's connection is untouched");
        bystander.Dispose();
        var stats = pool.GetStatistics();
        Assert.That((stats.Evicted, stats.Total), Is.EqualTo((1L, 1)), "only the killed connection was evicted");
        using var next = pool.Lease();
        Assert.That(ConnectionId(next.Connection), Is.Not.EqualTo(victimId));
    }

    [Test]
    public void A_connection_returned_broken_without_a_report_is_evicted_too()
    {
        using var pool = CreatePool();
        var connection = pool.Rent();
        Admin.Kill(ConnectionId(connection));
        var error = Assert.Catch(() => Scalar(connection, "SELECT 1"))!;

        pool.Return(connection); // the caller forgot to report; the driver's state says it all

        Assert.That(pool.GetStatistics().Evicted, Is.EqualTo(1), Describe(error));
        Assert.That(Request(pool), Is.Null);
    }

    [Test]
    public void A_held_connection_past_wait_timeout_fails_with_an_error_classified_as_a_disconnect()
    {
        using (Admin.GlobalWaitTimeout(1))
        {
            using var pool = CreatePool(o => o.KeepAliveInterval = TimeSpan.Zero);
            var connection = pool.Rent();
            var id = ConnectionId(connection);
            Eventually(() => !System.Linq.Enumerable.Contains(Admin.ConnectionIds(), id), TimeSpan.FromSeconds(15), "the server dropped the held connection");

            var error = Assert.Catch(() => Scalar(connection, "SELECT 1"))!;
            pool.Return(connection, error);

            TestContext.Progress.WriteLine($"{Driver}, held connection past wait_timeout: {Describe(error)}");
            Assert.That(DisconnectClassifier.IsDisconnect(error), Is.True, Describe(error));
            Assert.That(pool.GetStatistics().Evicted, Is.EqualTo(1));
        }
    }

    [Test]
    public void An_error_of_the_statement_leaves_the_connection_in_the_pool()
    {
        using var pool = CreatePool();
        var error = Request(pool, "SELEC 1");

        Assert.That(DisconnectClassifier.ErrorNumber(error!), Is.EqualTo(1064));
        var stats = pool.GetStatistics();
        Assert.That((stats.Evicted, stats.Idle), Is.EqualTo((0L, 1)));
    }

    internal static string Describe(Exception error)
    {
        var chain = new System.Text.StringBuilder();
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (chain.Length > 0)
                chain.Append(" -> ");
            chain.Append(e.GetType().Name);
            if (DisconnectClassifier.ErrorNumber(e) is { } n)
                chain.Append(" #").Append(n);
            chain.Append(" \"").Append(e.Message.Split('\n')[0]).Append('"');
        }

        return chain.ToString();
    }
}
