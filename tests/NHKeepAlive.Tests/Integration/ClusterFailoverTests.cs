using System;
using System.Globalization;
using System.Linq;
using System.Threading;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration.Cluster;

/// <summary>
/// The pool on a real 3-node Galera cluster, opened with the host list itself (no HAProxy, no driver
/// multi-host mode): 4 writers insert rows with client-made keys while node 1 refuses queries, turns
/// read-only or is killed. Errors are bounded by what was in flight, healthy nodes take the writes
/// within moments, the pool fails back once node 1 is healthy, no acknowledged write is lost.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
[Category("Integration")]
[Category("Cluster")]
[NonParallelizable]
public class ClusterFailoverTests(MySqlDriver driver) : ClusterTest(Table)
{
    private const string Table = "cluster_writes";
    private const int Writers = 4;

    [TestCase("reject")]
    [TestCase("readonly")]
    public void A_node_that_refuses_queries_or_turns_read_only_is_left_at_once_and_failed_back_to_without_errors(string fault)
    {
        using var pool = CreatePool();
        using var run = new WriteRun(pool, Cluster);
        run.Until(TimeSpan.FromSeconds(1.5));
        Assert.That(run.AckedOn().Keys, Is.EquivalentTo(new[] { "node1" }), "node 1, first in the host list, takes the writes");
        var openOnNode1 = pool.GetStatistics().Total;

        var faultAt = run.Elapsed;
        if (fault == "reject")
            Cluster.Reject(1);
        else
            Cluster.ReadOnly(1); // SET GLOBAL read_only waits for the writes in progress
        var commandReturned = run.Elapsed;
        run.Until(faultAt + TimeSpan.FromSeconds(4));

        // The fault lands when the first caller meets it, or at the latest when the command returns.
        var errors = run.ErrorsBetween(faultAt, faultAt + TimeSpan.FromSeconds(4));
        var landed = errors.Count > 0 && errors.Min(e => e.At) < commandReturned ? errors.Min(e => e.At) : commandReturned;
        var firstElsewhere = run.FirstAckAfter(faultAt, n => n != "node1") - landed;
        TestContext.Out.WriteLine($"{driver} {fault}: {errors.Count} errors ({string.Join(", ", errors.Select(e => e.Number).Distinct())}), first write on another node {firstElsewhere.TotalMilliseconds:0} ms after the fault landed (the command took {(commandReturned - faultAt).TotalMilliseconds:0} ms); {openOnNode1} connections were open to node 1");
        Assert.That(errors.Count, Is.LessThanOrEqualTo(Writers + openOnNode1), "at most the writes in flight plus one per connection open to node 1");
        Assert.That(firstElsewhere, Is.LessThan(TimeSpan.FromSeconds(1)), "a healthy node took the writes within a second");

        run.HealAndAssertFailback($"{driver} {fault}");

        run.Stop();
        run.AssertNoAcknowledgedWriteLost();
    }

    [Test]
    public void A_write_node_cut_off_from_itsCluster_costs_only_the_writes_in_flight()
    {
        using var pool = CreatePool();
        using var run = new WriteRun(pool, Cluster);
        run.Until(TimeSpan.FromSeconds(1.5));
        var openOnNode1 = pool.GetStatistics().Total;

        // Galera itself needs evs.suspect_timeout (5 s) to see the partition: the writes in flight on
        // node 1 hang until then (measured in docs/cluster.md), and only then fail with 1047/1180.
        var faultAt = run.Elapsed;
        Cluster.Isolate(1);
        var clusterWritable = run.WaitUntilNodeAcceptsWrites(2, TimeSpan.FromSeconds(20));
        run.Until(clusterWritable + TimeSpan.FromSeconds(8));
        run.Stop();

        var errors = run.ErrorsBetween(faultAt, run.Elapsed);
        var firstElsewhere = run.FirstAckAfter(faultAt, n => n != "node1");
        TestContext.Out.WriteLine($"{driver} isolate: {errors.Count} errors ({string.Join(", ", errors.Select(e => e.Number).Distinct())}); node 2 accepted writes {(clusterWritable - faultAt).TotalMilliseconds:0} ms after the fault, the pool's first write elsewhere {(firstElsewhere - faultAt).TotalMilliseconds:0} ms after it");
        Assert.That(errors.Count, Is.LessThanOrEqualTo(Writers + openOnNode1), "at most the writes in flight plus one per connection open to node 1");
        Assert.That(firstElsewhere - faultAt, Is.LessThan(TimeSpan.FromSeconds(12)), "once Galera saw the partition, the pool moved within moments");
        run.AssertNoAcknowledgedWriteLost();
    }

    [Test]
    public void A_killed_write_node_costs_only_the_writes_in_flight_and_no_open_hangs()
    {
        using var pool = CreatePool();
        using var run = new WriteRun(pool, Cluster);
        run.Until(TimeSpan.FromSeconds(1.5));
        var openOnNode1 = pool.GetStatistics().Total;

        // Beside the pool, a bare writer on node 2 says when the cluster accepts writes again.
        var killedAt = run.Elapsed;
        Cluster.Kill(1);
        var clusterWritable = run.WaitUntilNodeAcceptsWrites(2, TimeSpan.FromSeconds(20));
        run.Until(clusterWritable + TimeSpan.FromSeconds(1.5));
        run.Stop();

        var errors = run.ErrorsBetween(killedAt, run.Elapsed);
        var firstAck = run.FirstAckAfter(clusterWritable - TimeSpan.FromSeconds(0.5), n => n != "node1");
        TestContext.Out.WriteLine($"{driver} kill -9: {errors.Count} errors ({string.Join(", ", errors.Select(e => e.Number).Distinct())}); the cluster accepted writes {(clusterWritable - killedAt).TotalMilliseconds:0} ms after the kill, the pool's first {(firstAck - clusterWritable).TotalMilliseconds:0} ms after that; longest checkout {run.LongestCheckout.TotalMilliseconds:0} ms");
        Assert.That(errors.Count, Is.LessThanOrEqualTo(Writers + openOnNode1), "at most the writes in flight plus one per connection open to node 1");
        Assert.That(firstAck - clusterWritable, Is.LessThan(TimeSpan.FromSeconds(0.5)));
        Assert.That(run.LongestCheckout, Is.LessThan(TimeSpan.FromSeconds(3)), "no Open() hang on the dead node");
        run.AssertNoAcknowledgedWriteLost();
    }

    [Test]
    public void Behind_one_HAProxy_endpoint_a_read_only_node_costs_errors_only_until_HAProxy_moves_and_none_after()
    {
        using var pool = CreatePool(Cluster.HaproxyConnectionString(driver));
        using var run = new WriteRun(pool, Cluster);
        run.Until(TimeSpan.FromSeconds(1));

        var faultAt = run.Elapsed;
        Cluster.ReadOnly(1);
        Assert.That(Cluster.WaitForHaproxy(1, "DOWN", TimeSpan.FromSeconds(15)), Is.True, "HAProxy's wsrep-aware check took node 1 out");
        var movedAt = run.Elapsed;
        run.Until(movedAt + TimeSpan.FromSeconds(3));
        run.Stop();

        var firstElsewhere = run.FirstAckAfter(faultAt, n => n != "node1");
        var errorsAfterMove = run.ErrorsBetween(movedAt + TimeSpan.FromSeconds(1), run.Elapsed);
        TestContext.Out.WriteLine($"{driver} via HAProxy, readonly: HAProxy moved {(movedAt - faultAt).TotalMilliseconds:0} ms after the fault; {run.ErrorsBetween(faultAt, run.Elapsed).Count} errors in all, first write on another node {(firstElsewhere - faultAt).TotalMilliseconds:0} ms after the fault, {errorsAfterMove.Count} errors from a second after HAProxy moved");
        Assert.That(firstElsewhere - movedAt, Is.LessThan(TimeSpan.FromSeconds(1)), "connections that met 1290 were replaced at once, through HAProxy, on the node it now sends to");
        Assert.That(errorsAfterMove, Is.Empty, "no connection to the read-only node is handed out again");
        run.AssertNoAcknowledgedWriteLost();
    }

    private KeepAlivePool CreatePool(string? connectionString = null) => new(new KeepAliveOptions
    {
        ConnectionString = connectionString ?? Cluster.ConnectionString(driver, string.Join(",", Cluster.Nodes.Select(n => n.Host)), Cluster.Nodes[0].Port),
        Driver = driver,
        MaxPoolSize = 8,
        KeepAliveInterval = TimeSpan.FromSeconds(1),
        ValidationTimeout = TimeSpan.FromSeconds(2),
        ConnectionTimeout = TimeSpan.FromSeconds(10),
        ShutdownGracePeriod = TimeSpan.Zero,
    });

    /// <summary>Writers that insert rows with client-made keys through the pool, reporting each error to it as a caller should.</summary>
    private sealed class WriteRun : ClusterWriteRun
    {
        private readonly KeepAlivePool _pool;
        private long _longestCheckoutTicks;

        public WriteRun(KeepAlivePool pool, TestCluster cluster)
            : base(cluster, Table)
        {
            _pool = pool;
            Start(Writers);
        }

        public TimeSpan LongestCheckout => TimeSpan.FromTicks(Interlocked.Read(ref _longestCheckoutTicks));

        /// <summary>When a bare connection to node <paramref name="node"/> first commits a write (polled every 50 ms).</summary>
        public TimeSpan WaitUntilNodeAcceptsWrites(int node, TimeSpan limit)
        {
            var deadline = Elapsed + limit;
            while (Elapsed < deadline)
            {
                try
                {
                    using var c = new MySqlConnector.MySqlConnection(Cluster.NodeConnectionString(node, MySqlDriver.MySqlConnector, "Pooling=false;Connection Timeout=2;Default Command Timeout=2"));
                    c.Open();
                    using var command = c.CreateCommand();
                    command.CommandText = $"INSERT INTO {Table} (id, node) VALUES ('{Guid.NewGuid():N}', 'probe')";
                    command.ExecuteNonQuery();
                    return Elapsed;
                }
                catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
                {
                    Thread.Sleep(50);
                }
            }

            Assert.Fail($"node {node} did not accept a write within {limit.TotalSeconds} s");
            return default;
        }

        protected override string WriteOne(string id)
        {
            var started = Elapsed;
            using var lease = _pool.Lease();
            var waited = (Elapsed - started).Ticks;
            long seen;
            while (waited > (seen = Interlocked.Read(ref _longestCheckoutTicks)) && Interlocked.CompareExchange(ref _longestCheckoutTicks, waited, seen) != seen)
            {
            }

            try
            {
                using var command = lease.Connection.CreateCommand();
                command.CommandText = $"INSERT INTO {Table} (id, node) VALUES ('{id}', @@wsrep_node_name)";
                command.CommandTimeout = 10;
                command.ExecuteNonQuery();
                command.CommandText = $"SELECT node FROM {Table} WHERE id = '{id}'";
                return Convert.ToString(command.ExecuteScalar(), CultureInfo.InvariantCulture)!;
            }
            catch (Exception e)
            {
                lease.ReportFailure(e); // how a caller tells the pool what it met: a node error leaves the node
                throw;
            }
        }

        protected override int? ErrorNumber(Exception error) => DisconnectClassifier.ErrorNumber(error);
    }
}
