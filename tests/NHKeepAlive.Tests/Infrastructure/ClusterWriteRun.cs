using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>
/// Writers that put rows with client-made keys on the test cluster until stopped, recording what each
/// caller saw (the node that took the row, or the error number), and the checks every cluster test
/// makes of that record. Shared by the core and the NHibernate cluster tests; each says how one row is
/// written.
/// </summary>
internal abstract class ClusterWriteRun : IDisposable
{
    private readonly string _table;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ConcurrentQueue<(TimeSpan At, string Id, string? Node, int? Number)> _results = new();
    private readonly CancellationTokenSource _stop = new();
    private Task[] _writers = [];

    protected ClusterWriteRun(TestCluster cluster, string table)
    {
        Cluster = cluster;
        _table = table;
    }

    public TimeSpan Elapsed => _clock.Elapsed;

    protected TestCluster Cluster { get; }

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

    /// <summary>Creates the writers' table on the cluster (through node 2) if it is not there yet.</summary>
    public static void CreateTable(TestCluster cluster, string table)
    {
        using var admin = new MySqlConnector.MySqlConnection(cluster.NodeConnectionString(2, MySqlDriver.MySqlConnector, "Pooling=false"));
        admin.Open();
        using var command = admin.CreateCommand();
        command.CommandText = $"CREATE TABLE IF NOT EXISTS {table} (id CHAR(32) PRIMARY KEY, node VARCHAR(16) NOT NULL) ENGINE=InnoDB";
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Heals node 1 and checks the failback: 3 s more of writes, none of which fails, and a write
    /// acknowledged by node 1 within 2 s (two keepalive intervals of 1 s) of node 1 being synced again.
    /// </summary>
    public void HealAndAssertFailback(string label)
    {
        Cluster.Heal(1);
        var healedAt = Elapsed;
        Until(healedAt + TimeSpan.FromSeconds(3));
        var backOnNode1 = FirstAckAfter(healedAt, n => n == "node1") - healedAt;
        var errorsAfterHeal = ErrorsBetween(healedAt, Elapsed);
        TestContext.Out.WriteLine($"{label}: failback {backOnNode1.TotalMilliseconds:0} ms after node 1 was synced again, {errorsAfterHeal.Count} errors");
        Assert.That(errorsAfterHeal, Is.Empty, "failback costs no error");
        Assert.That(backOnNode1, Is.LessThan(TimeSpan.FromSeconds(2)), "within two keepalive intervals (1 s)");
    }

    public void Stop()
    {
        _stop.Cancel();
        Task.WaitAll(_writers, TimeSpan.FromSeconds(30));
    }

    /// <summary>Every acknowledged row is on the cluster (read causally on node 2); rows whose caller got an error but that committed are counted, never retried.</summary>
    public void AssertNoAcknowledgedWriteLost()
    {
        var acked = _results.Where(r => r.Node is not null).Select(r => r.Id).ToList();
        var failed = _results.Where(r => r.Node is null).Select(r => r.Id).ToList();
        using var check = new MySqlConnector.MySqlConnection(Cluster.NodeConnectionString(2, MySqlDriver.MySqlConnector, "Pooling=false"));
        check.Open();
        using var sync = check.CreateCommand();
        sync.CommandText = "SET SESSION wsrep_sync_wait = 1";
        sync.ExecuteNonQuery();
        var stored = new HashSet<string>(StringComparer.Ordinal);
        using (var read = check.CreateCommand())
        {
            read.CommandText = $"SELECT id FROM {_table}";
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

    /// <summary>Starts the writers; the derived constructor calls it last, once it can write.</summary>
    protected void Start(int writers) =>
        _writers = [.. Enumerable.Range(0, writers).Select(_ => Task.Factory.StartNew(Write, TaskCreationOptions.LongRunning))];

    /// <summary>Writes the row keyed <paramref name="id"/>; returns the node that took it, or throws what the caller met.</summary>
    protected abstract string WriteOne(string id);

    /// <summary>The server's error number in what a caller met, if any.</summary>
    protected abstract int? ErrorNumber(Exception error);

    private void Write()
    {
        while (!_stop.IsCancellationRequested)
        {
            var id = Guid.NewGuid().ToString("N");
            try
            {
                var node = WriteOne(id);
                _results.Enqueue((_clock.Elapsed, id, node, null));
            }
#pragma warning disable CA1031 // Whatever a caller meets is recorded: that is the measurement.
            catch (Exception e)
#pragma warning restore CA1031
            {
                _results.Enqueue((_clock.Elapsed, id, null, ErrorNumber(e) ?? -1));
            }

            Thread.Sleep(20);
        }
    }
}
