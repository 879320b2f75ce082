using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading;
using MySqlConnector;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration.Cluster;

/// <summary>
/// The cluster harness itself, with the stock MySqlConnector only (no pooling): a 3-node Galera cluster
/// behind HAProxy, writes through HAProxy, and what a client sees when the write node refuses queries or
/// turns read-only until HAProxy's wsrep-aware health check moves writes to a backup node.
/// </summary>
[Category("Integration")]
[Category("Cluster")]
[NonParallelizable]
public class ClusterSmokeTests() : ClusterTest(Table)
{
    private const string Table = "cluster_smoke";
    private static readonly TimeSpan MoveLimit = TimeSpan.FromSeconds(15);
    private string ThroughHaproxy => Cluster.HaproxyConnectionString(MySqlDriver.MySqlConnector, "Pooling=false");

    [Test]
    public void A_write_through_HAProxy_lands_on_node_1_and_reaches_every_node()
    {
        var id = NewId();
        Assert.That(Write(ThroughHaproxy, id), Is.EqualTo("node1"));

        foreach (var node in Cluster.Nodes)
        {
            using var direct = Open(Cluster.NodeConnectionString(node.Number, MySqlDriver.MySqlConnector, "Pooling=false"));
            Assert.That(Scalar(direct, "SELECT @@wsrep_node_name"), Is.EqualTo(node.Name));
            Execute(direct, "SET SESSION wsrep_sync_wait = 1"); // a causal read: sees every write committed anywhere before it
            Assert.That(Scalar(direct, $"SELECT node FROM {Table} WHERE id = '{id}'"), Is.EqualTo("node1"), node.Name);
        }
    }

    [Test]
    public void A_write_node_refusing_queries_answers_1047_until_HAProxy_moves_writes_to_a_backup()
    {
        using var held = Open(ThroughHaproxy);
        Assert.That(Scalar(held, "SELECT @@wsrep_node_name"), Is.EqualTo("node1"));

        Cluster.Reject(1);
        var watch = Stopwatch.StartNew();
        var rejected = Assert.Throws<MySqlException>(() => Execute(held, $"INSERT INTO {Table} VALUES ('{NewId()}', 'held')"));
        Assert.That(rejected!.Number, Is.EqualTo(1047), rejected.Message);

        var (node, errors) = WriteUntilAccepted();
        Report("reject", watch.Elapsed, node, errors);
        Assert.That(node, Is.Not.EqualTo("node1"), "writes still reach the node that refuses queries");
        Assert.That(errors.Where(e => e != 0), Is.All.EqualTo(1047), "the errors before HAProxy moved writes");
        Assert.That(Cluster.WaitForHaproxy(1, "DOWN", TimeSpan.FromSeconds(5)), Is.True, Cluster.Status());

        // on-marked-down shutdown-sessions: HAProxy cut the connection that was still open to node 1.
        Assert.Throws<MySqlException>(() => Scalar(held, "SELECT 1"));
    }

    [Test]
    public void A_read_only_write_node_answers_1290_until_HAProxy_moves_writes_to_a_backup()
    {
        using var held = Open(ThroughHaproxy);
        Assert.That(Scalar(held, "SELECT @@wsrep_node_name"), Is.EqualTo("node1"));

        Cluster.ReadOnly(1);
        var watch = Stopwatch.StartNew();
        var refused = Assert.Throws<MySqlException>(() => Execute(held, $"INSERT INTO {Table} VALUES ('{NewId()}', 'held')"));
        Assert.That(refused!.Number, Is.EqualTo(1290), refused.Message);

        var (node, errors) = WriteUntilAccepted();
        Report("readonly", watch.Elapsed, node, errors);
        Assert.That(node, Is.Not.EqualTo("node1"), "writes still reach the read-only node");
        Assert.That(errors.Where(e => e != 0), Is.All.EqualTo(1290), "the errors before HAProxy moved writes");
    }

    /// <summary>
    /// Writes through HAProxy on a new connection each time until one is acknowledged (bounded by
    /// <see cref="MoveLimit"/>); returns the node that took it and the error numbers met before
    /// (0 for a connection HAProxy cut).
    /// </summary>
    private (string Node, List<int> Errors) WriteUntilAccepted()
    {
        var errors = new List<int>();
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return (Write(ThroughHaproxy, NewId()), errors);
            }
            catch (MySqlException e)
            {
                errors.Add(e.Number);
                if (watch.Elapsed > MoveLimit)
                    Assert.Fail($"no write was acknowledged within {MoveLimit.TotalSeconds} s (errors: {string.Join(", ", errors.Distinct())}; last: {e.Message})\n{Cluster.Status()}");
                Thread.Sleep(50);
            }
        }
    }

    private static void Report(string fault, TimeSpan elapsed, string node, List<int> errors) =>
        TestContext.Progress.WriteLine(
            $"{fault}: first write acknowledged on {node} {elapsed.TotalSeconds:F1} s after the fault; errors before it: " +
            string.Join(", ", errors.GroupBy(e => e).Select(g => $"{g.Count()} x {g.Key}")));

    /// <summary>Opens a connection, writes one row; returns the node it went to.</summary>
    private static string Write(string connectionString, string id)
    {
        using var connection = Open(connectionString);
        var node = (string)Scalar(connection, "SELECT @@wsrep_node_name")!;
        Execute(connection, $"INSERT INTO {Table} VALUES ('{id}', '{node}')");
        return node;
    }

    private static string NewId() => Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture);

    private static MySqlConnection Open(string connectionString)
    {
        var connection = new MySqlConnection(connectionString);
        try
        {
            connection.Open();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static void Execute(MySqlConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(MySqlConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
