using System;
using System.Data.Common;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>Base of the tests that run against the real server, once per driver.</summary>
/// <remarks>Each subclass names the drivers it runs with, as [TestFixture(driver)] attributes.</remarks>
[Category("Integration")]
[NonParallelizable]
public abstract class IntegrationTest(MySqlDriver driver)
{
    protected MySqlDriver Driver { get; } = driver;

    private protected ServerAdmin Admin { get; private set; } = null!;

    private protected CapturingLoggerFactory Log { get; private set; } = null!;

    [SetUp]
    public void ConnectAdmin()
    {
        Admin = new ServerAdmin();
        Log = new CapturingLoggerFactory();
    }

    private readonly System.Collections.Generic.List<KeepAlivePool> _pools = [];

    [TearDown]
    public void DisconnectAdmin()
    {
        // Every physical connection accounted for: what the pools say they hold is what the server has.
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Passed && Admin is not null)
        {
            var pools = _pools.ToArray();
            try
            {
                Eventually(
                    () => Admin.ConnectionIds().Count == pools.Sum(p => p.GetStatistics().Total),
                    TimeSpan.FromSeconds(10),
                    "the server's connections equal the pools' accounting (active + idle + opening + checking)");
            }
            catch (System.Data.Common.DbException)
            {
                // The server was restarted under this admin connection: nothing to compare against.
            }
        }

        foreach (var pool in _pools)
            pool.Dispose(); // A failed test may have left one: its thread must not outlive the test.
        _pools.Clear();

        // Whatever a failed test left open (a held connection, a lock) must not reach the next one.
        try
        {
            Admin?.KillAll(Admin.ConnectionIds());
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
        {
            // The server was restarted under this admin connection.
        }

        Admin?.Dispose();
        Log?.Dispose();
    }

    protected KeepAlivePool CreatePool(Action<KeepAliveOptions>? configure = null, int? port = null)
    {
        var pool = TestServer.CreatePool(Driver, o =>
        {
            o.LoggerFactory = Log;
            configure?.Invoke(o);
        }, port);
        _pools.Add(pool);
        return pool;
    }

    protected static object? Scalar(DbConnection connection, string sql, DbTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command.ExecuteScalar();
    }

    protected static long ConnectionId(DbConnection connection) =>
        Convert.ToInt64(Scalar(connection, "SELECT CONNECTION_ID()"), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Runs <paramref name="request"/> on a pooled connection; returns the error it met, if any.</summary>
    protected static Exception? Request(KeepAlivePool pool, string sql = "SELECT 1")
    {
        try
        {
            using var lease = pool.Lease();
            try
            {
                Scalar(lease.Connection, sql);
                return null;
            }
            catch (Exception e)
            {
                lease.ReportFailure(e);
                return e;
            }
        }
        catch (Exception e)
        {
            return e;
        }
    }

    /// <summary>As <see cref="Request"/>, through the async API.</summary>
    protected static async Task<Exception?> RequestAsync(KeepAlivePool pool, string sql = "SELECT 1")
    {
        try
        {
            using var lease = await pool.LeaseAsync().ConfigureAwait(false);
            try
            {
                using var command = lease.Connection.CreateCommand();
                command.CommandText = sql;
                await command.ExecuteScalarAsync().ConfigureAwait(false);
                return null;
            }
            catch (Exception e)
            {
                lease.ReportFailure(e);
                return e;
            }
        }
        catch (Exception e)
        {
            return e;
        }
    }

    /// <summary>
    /// Waits until every returned connection is back in the idle list: with MySqlConnector the default
    /// session reset runs in the background after a return, and a fault injected meanwhile would meet
    /// the reset instead of the idle connection the test is about.
    /// </summary>
    protected static void Settled(KeepAlivePool pool) =>
        Eventually(() => pool.GetStatistics() is { Checking: 0, Opening: 0 }, TimeSpan.FromSeconds(5), "the returned connections are idle again");

    /// <summary>Waits out a real span of time: the behaviour under test is a server or pool timeout measured in wall-clock time.</summary>
    protected static void Elapse(TimeSpan span) => Thread.Sleep(span);

    /// <summary>Whether the tests run on Mono (net48 there), whose System.Transactions differs from .NET's.</summary>
    protected static bool UnderMono => Type.GetType("Mono.Runtime") is not null;

    /// <summary>Waits, boundedly, until <paramref name="condition"/> holds on the server.</summary>
    protected static void Eventually(Func<bool> condition, TimeSpan limit, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > limit)
                Assert.Fail($"Not within {limit.TotalSeconds} s: {what}");
            Thread.Sleep(25);
        }
    }
}
