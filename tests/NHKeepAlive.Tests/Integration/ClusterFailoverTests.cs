using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
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
public class ClusterFailoverTests(MySqlDriver driver)
{
    private const string Table = "cluster_writes";
    private const int Writers = 4;
    private TestCluster _cluster = null!;

    [OneTimeSetUp]
    public void StartCluster()
    {
        _cluster = TestCluster.Shared;
        if (_cluster.SkipReason is { } reason)
            Assert.Ignore(reason);
        using var admin = new MySqlConnector.MySqlConnection(_cluster.NodeConnectionString(2, MySqlDriver.MySqlConnector, "Pooling=false"));
        admin.Open();
        using var command = admin.CreateCommand();
        command.CommandText = $"CREATE TABLE IF NOT EXISTS {Table} (id CHAR(32) PRIMARY KEY, node VARCHAR(16) NOT NULL) ENGINE=InnoDB";
        command.ExecuteNonQuery();
    }

    [TearDown]
    public void RestoreCluster()
    {
        if (_cluster.SkipReason is null)
            _cluster.Restore();
    }

    [TestCase("reject")]
    [TestCase("readonly")]
    public void A_node_that_refuses_queries_or_turns_read_only_is_left_at_once_and_failed_back_to_without_errors(string fault)
    {
        using var pool = CreatePool();
        using var run = new WriteRun(pool, _cluster);
        run.Until(TimeSpan.FromSeconds(1.5));
        Assert.That(run.AckedOn().Keys, Is.EquivalentTo(new[] { "node1" }), "node 1, first in the host list, takes the writes");
        var openOnNode1 = pool.GetStatistics().Total;

        var faultAt = run.Elapsed;
        if (fault == "reject")
            _cluster.Reject(1);
        else
            _cluster.ReadOnly(1); // SET GLOBAL read_only waits for the writes in progress
        var commandReturned = run.Elapsed;
        run.Until(faultAt + TimeSpan.FromSeconds(4));

        // The fault lands when the first caller meets it, or at the latest when the command returns.
        var errors = run.ErrorsBetween(faultAt, faultAt + TimeSpan.FromSeconds(4));
        var landed = errors.Count > 0 && errors.Min(e => e.At) < commandReturned ? errors.Min(e => e.At) : commandReturned;
        var firstElsewhere = run.FirstAckAfter(faultAt, n => n != "node1") - landed;
        TestContext.Out.WriteLine($"{driver} {fault}: {errors.Count} errors ({string.Join(", ", errors.Select(e => e.Number).Distinct())}), first write on another node {firstElsewhere.TotalMilliseconds:0} ms after the fault landed (the command took {(commandReturned - faultAt).TotalMilliseconds:0} ms); {openOnNode1} connections were open to node 1");
        Assert.That(errors.Count, Is.LessThanOrEqualTo(Writers + openOnNode1), "at most the writes in flight plus one per connection open to node 1");
        Assert.That(firstElsewhere, Is.LessThan(TimeSpan.FromSeconds(1)), "a healthy node took the writes within a second");

        _cluster.Heal(1);
        var healedAt = run.Elapsed;
        run.Until(healedAt + TimeSpan.FromSeconds(3));
        var backOnNode1 = run.FirstAckAfter(healedAt, n => n == "node1") - healedAt;
        var errorsAfterHeal = run.ErrorsBetween(healedAt, run.Elapsed);
        TestContext.Out.WriteLine($"{driver} {fault}: failback {backOnNode1.TotalMilliseconds:0} ms after node 1 was synced again, {errorsAfterHeal.Count} errors");
        Assert.That(errorsAfterHeal, Is.Empty, "failback costs no error");
        Assert.That(backOnNode1, Is.LessThan(TimeSpan.FromSeconds(2)), "within two keepalive intervals (1 s)");

        run.Stop();
        run.AssertNoAcknowledgedWriteLost();
    }

    [Test]
    public void A_write_node_cut_off_from_its_cluster_costs_only_the_writes_in_flight()
    {
        using var pool = CreatePool();
        using var run = new WriteRun(pool, _cluster);
        run.Until(TimeSpan.FromSeconds(1.5));
        var openOnNode1 = pool.GetStatistics().Total;

        // Galera itself needs evs.suspect_timeout (5 s) to see the partition: the writes in flight on
        // node 1 hang until then (measured in docs/cluster.md), and only then fail with 1047/1180.
        var faultAt = run.Elapsed;
        _cluster.Isolate(1);
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
        using var run = new WriteRun(pool, _cluster);
        run.Until(TimeSpan.FromSeconds(1.5));
        var openOnNode1 = pool.GetStatistics().Total;

        // Beside the pool, a bare writer on node 2 says when the cluster accepts writes again.
        var killedAt = run.Elapsed;
        _cluster.Kill(1);
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
        using var pool = CreatePool(_cluster.HaproxyConnectionString(driver));
        using var run = new WriteRun(pool, _cluster);
        run.Until(TimeSpan.FromSeconds(1));

        var faultAt = run.Elapsed;
        _cluster.ReadOnly(1);
        Assert.That(_cluster.WaitForHaproxy(1, "DOWN", TimeSpan.FromSeconds(15)), Is.True, "HAProxy's wsrep-aware check took node 1 out");
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
        ConnectionString = connectionString ?? _cluster.ConnectionString(driver, string.Join(",", _cluster.Nodes.Select(n => n.Host)), _cluster.Nodes[0].Port),
        Driver = driver,
        MaxPoolSize = 8,
        KeepAliveInterval = TimeSpan.FromSeconds(1),
        ValidationTimeout = TimeSpan.FromSeconds(2),
        ConnectionTimeout = TimeSpan.FromSeconds(10),
        ShutdownGracePeriod = TimeSpan.Zero,
    });

    /// <summary>Writers that insert rows with client-made keys, recording what each caller saw, until stopped.</summary>
    private sealed class WriteRun : IDisposable
    {
        private readonly KeepAlivePool _pool;
        private readonly TestCluster _cluster;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly ConcurrentQueue<(TimeSpan At, string Id, string? Node, int? Number)> _results = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task[] _writers;
        private long _longestCheckoutTicks;

        public WriteRun(KeepAlivePool pool, TestCluster cluster)
        {
            _pool = pool;
            _cluster = cluster;
            _writers = Enumerable.Range(0, Writers).Select(_ => Task.Factory.StartNew(Write, TaskCreationOptions.LongRunning)).ToArray();
        }

        public TimeSpan Elapsed => _clock.Elapsed;

        public TimeSpan LongestCheckout => TimeSpan.FromTicks(Interlocked.Read(ref _longestCheckoutTicks));

        public void Until(TimeSpan at)
        {
            var wait = at - _clock.Elapsed;
            if (wait > TimeSpan.Zero)
                Thread.Sleep(wait); // the faults under test play out in real time
        }

        public Dictionary<string, int> AckedOn() =>
            _results.Where(r => r.Node is not null).GroupBy(r => r.Node!).ToDictionary(g => g.Key, g => g.Count());

        public List<(TimeSpan At, string Id, string? Node, int? Number)> ErrorsBetween(TimeSpan from, TimeSpan to) =>
            [.. _results.Where(r => r.Node is null && r.At >= from && r.At <= to)];

        public TimeSpan FirstAckAfter(TimeSpan from, Func<string, bool> node)
        {
            var acks = _results.Where(r => r.Node is not null && r.At >= from && node(r.Node)).Select(r => r.At).ToList();
            Assert.That(acks, Is.Not.Empty, "a write was acknowledged on the expected node");
            return acks.Min();
        }

        /// <summary>When a bare connection to node <paramref name="node"/> first commits a write (polled every 50 ms).</summary>
        public TimeSpan WaitUntilNodeAcceptsWrites(int node, TimeSpan limit)
        {
            var deadline = _clock.Elapsed + limit;
            while (_clock.Elapsed < deadline)
            {
                try
                {
                    using var c = new MySqlConnector.MySqlConnection(_cluster.NodeConnectionString(node, MySqlDriver.MySqlConnector, "Pooling=false;Connection Timeout=2;Default Command Timeout=2"));
                    c.Open();
                    using var command = c.CreateCommand();
                    command.CommandText = $"INSERT INTO {Table} (id, node) VALUES ('{Guid.NewGuid():N}', 'probe')";
                    command.ExecuteNonQuery();
                    return _clock.Elapsed;
                }
                catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
                {
                    Thread.Sleep(50);
                }
            }

            Assert.Fail($"node {node} did not accept a write within {limit.TotalSeconds} s");
            return default;
        }

        public void Stop()
        {
            _stop.Cancel();
            Task.WaitAll(_writers, TimeSpan.FromSeconds(30));
        }

        public void AssertNoAcknowledgedWriteLost()
        {
            var acked = _results.Where(r => r.Node is not null).Select(r => r.Id).ToList();
            var failed = _results.Where(r => r.Node is null).Select(r => r.Id).ToList();
            using var check = new MySqlConnector.MySqlConnection(_cluster.NodeConnectionString(2, MySqlDriver.MySqlConnector, "Pooling=false"));
            check.Open();
            using var sync = check.CreateCommand();
            sync.CommandText = "SET SESSION wsrep_sync_wait = 1";
            sync.ExecuteNonQuery();
            var stored = new HashSet<string>(StringComparer.Ordinal);
            using (var read = check.CreateCommand())
            {
                read.CommandText = $"SELECT id FROM {Table}";
                using var reader = read.ExecuteReader();
                while (reader.Read())
                    stored.Add(reader.GetString(0));
            }

            var lost = acked.Where(id => !stored.Contains(id)).ToList();
            var phantom = failed.Count(stored.Contains);
            TestContext.Out.WriteLine($"{acked.Count} writes acknowledged, {failed.Count} failed (the callers saw each), {phantom} of the failed ones had committed (phantom writes: never retried)");
            Assert.That(lost, Is.Empty, "no acknowledged write is lost");
        }

        public void Dispose()
        {
            Stop();
            _stop.Dispose();
        }

        private void Write()
        {
            while (!_stop.IsCancellationRequested)
            {
                var id = Guid.NewGuid().ToString("N");
                var started = _clock.Elapsed;
                try
                {
                    using var lease = _pool.Lease();
                    var waited = (_clock.Elapsed - started).Ticks;
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
                        var node = Convert.ToString(command.ExecuteScalar(), CultureInfo.InvariantCulture);
                        _results.Enqueue((_clock.Elapsed, id, node, null));
                    }
                    catch (Exception e)
                    {
                        lease.ReportFailure(e); // how a caller tells the pool what it met: a node error leaves the node
                        _results.Enqueue((_clock.Elapsed, id, null, DisconnectClassifier.ErrorNumber(e) ?? -1));
                    }
                }
                catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException or InvalidOperationException)
                {
                    _results.Enqueue((_clock.Elapsed, id, null, DisconnectClassifier.ErrorNumber(e) ?? -2));
                }

                Thread.Sleep(20);
            }
        }
    }
}
