using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class ConcurrencyTests(MySqlDriver driver) : IntegrationTest(driver)
{
    [Test]
    public void Thirty_two_callers_share_ten_connections_without_deadlock_or_double_hand_out()
    {
        const int callers = 32;
        const int max = 10;
        using var pool = CreatePool(o => o.MaxPoolSize = max);
        var inUse = new ConcurrentDictionary<object, int>(ReferenceComparer.Instance);
        var serverIdsInUse = new ConcurrentDictionary<long, int>();
        var violations = 0;
        var operations = 0;
        var stop = Stopwatch.StartNew();
        var duration = TimeSpan.FromSeconds(3);

        var workers = Enumerable.Range(0, callers).Select(i => Task.Run(async () =>
        {
            var iterations = 0;
            while (stop.Elapsed < duration && iterations++ < 100_000)
            {
                var connection = i % 2 == 0 ? await pool.RentAsync() : pool.Rent();
                try
                {
                    // Keyed on the physical connection: every checkout gets a handle of its own.
                    var physical = connection.Physical();
                    if (!inUse.TryAdd(physical, i))
                        Interlocked.Increment(ref violations);
                    var id = ConnectionId(connection);
                    if (!serverIdsInUse.TryAdd(id, i))
                        Interlocked.Increment(ref violations);
                    serverIdsInUse.TryRemove(id, out _);
                    inUse.TryRemove(physical, out _);
                    Interlocked.Increment(ref operations);
                }
                finally
                {
                    pool.Return(connection);
                }
            }
        })).ToArray();

        var finished = Task.WaitAll(workers, TimeSpan.FromSeconds(60));
        Assert.That(finished, Is.True, "no deadlock: every caller finished");
        Assert.That(violations, Is.Zero, "no connection was handed to two callers at once");
        var stats = pool.GetStatistics();
        TestContext.Progress.WriteLine($"{Driver}: {operations} checkouts by {callers} callers in {duration.TotalSeconds} s over {stats.Created} connections");
        Assert.That(operations, Is.GreaterThan(callers));
        Assert.That(stats.Active, Is.Zero);
        Assert.That(stats.Pending, Is.Zero);
        Assert.That(stats.Total, Is.LessThanOrEqualTo(max));
        Assert.That(Admin.ConnectionIds().Count, Is.EqualTo(stats.Idle), "the server sees exactly the pool's idle connections");
    }
}
