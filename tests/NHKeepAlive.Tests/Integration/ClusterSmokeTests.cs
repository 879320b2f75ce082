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
/// turns read-only until HAProxy's wsrep-aware health check moves writes to a backup node. What is
/// asserted is what the stock configuration is meant to show (writes fail while the node is faulty,
/// HAProxy moves them within its check's bound, the errors are node or connection errors), not which
/// error each caller meets during the switch: that is timing.
/// </summary>
[Category("Integration")]
[Category("Cluster")]
[NonParallelizable]
public class ClusterSmokeTests() : ClusterTest(Table)
{
    private const string Table = "cluster_smoke";

    /// <summary>How long the writes keep trying before the test gives up (the failure message then shows what they met).</summary>
    private static readonly TimeSpan MoveLimit = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Within how long of the fault HAProxy has moved writes: its check (build/cluster.sh: inter 1 s,
    /// fastinter 0.5 s, fall 2, timeout check 2 s) takes a node out after two failed checks, at most
    /// 1 + 2 + 0.5 + 2 = 5.5 s after the fault; 2.5 s more for the write that follows on a busy machine.
    /// </summary>
    private static readonly TimeSpan MoveBound = TimeSpan.FromSeconds(8);
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
    public void A_write_node_refusing_queries_fails_writes_until_HAProxy_moves_them_to_a_backup() =>
        WritesFailUntilHaproxyMovesThem("reject", Cluster.Reject, nodeError: 1047);

    [Test]
    public void A_read_only_write_node_fails_writes_until_HAProxy_moves_them_to_a_backup() =>
        WritesFailUntilHaproxyMovesThem("readonly", Cluster.ReadOnly, nodeError: 1290);

    /// <summary>
    /// What the stock configuration shows when node 1 turns faulty (<paramref name="fault"/>) under a
    /// connection open to it: the write on that connection fails (the node's <paramref name="nodeError"/>,
    /// or a cut connection if HAProxy was quicker); HAProxy takes node 1 out within its check's bound and
    /// new connections write to a backup; until then each write fails with a node error or, while HAProxy
    /// cuts and switches, a connect or connection error. How many of each, and in what order, is timing:
    /// not asserted, but listed in every failure message.
    /// </summary>
    private void WritesFailUntilHaproxyMovesThem(string fault, Action<int> inject, int nodeError)
    {
        using var held = Open(ThroughHaproxy);
        Assert.That(Scalar(held, "SELECT @@wsrep_node_name"), Is.EqualTo("node1"));

        inject(1);
        var watch = Stopwatch.StartNew();
        var heldError = Assert.Catch(() => Execute(held, $"INSERT INTO {Table} VALUES ('{NewId()}', 'held')"), "a write on the faulty node fails")!;
        var met = new List<Met> { Met.Of(heldError, watch.Elapsed) };
        Assert.That(met[0].Number == nodeError || met[0].Kind == ErrorKind.Connection, Is.True, $"the held write met the node's {nodeError}, or HAProxy had cut it already: {met[0]}");

        var node = WriteUntilAccepted(watch, met);
        var moved = watch.Elapsed;
        Report(fault, moved, node, met);
        Assert.That(node, Is.Not.EqualTo("node1"), "writes still reach the faulty node");
        Assert.That(moved, Is.LessThan(MoveBound), $"HAProxy moved writes {moved.TotalSeconds:F1} s after the fault; errors before: {Summary(met)}\n{Cluster.Status()}");
        Assert.That(met.Where(m => m.Kind == ErrorKind.Other), Is.Empty, $"every error while HAProxy moves writes is a node error or a connect/connection error; errors before: {Summary(met)}");
        Assert.That(Cluster.WaitForHaproxy(1, "DOWN", TimeSpan.FromSeconds(5)), Is.True, Cluster.Status());

        // on-marked-down shutdown-sessions: HAProxy cut the connection that was still open to node 1.
        // (SELECT 1 itself would succeed on the node, refusing or read-only.)
        var cut = Assert.Catch(() => Scalar(held, "SELECT 1"), "HAProxy cut the session still open to node 1")!;
        Assert.That(Met.Of(cut, watch.Elapsed).Kind, Is.EqualTo(ErrorKind.Connection), Met.Of(cut, watch.Elapsed).ToString());
    }

    /// <summary>
    /// Writes through HAProxy on a new connection each time until one is acknowledged (bounded by
    /// <see cref="MoveLimit"/>); returns the node that took it, adding what each failed write met to
    /// <paramref name="met"/>.
    /// </summary>
    private string WriteUntilAccepted(Stopwatch sinceFault, List<Met> met)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return Write(ThroughHaproxy, NewId());
            }
#pragma warning disable CA1031 // Whatever a write meets is recorded (a raw socket error too): that is the observation.
            catch (Exception e)
#pragma warning restore CA1031
            {
                met.Add(Met.Of(e, sinceFault.Elapsed));
                if (watch.Elapsed > MoveLimit)
                    Assert.Fail($"no write was acknowledged within {MoveLimit.TotalSeconds} s; errors: {Summary(met)}\n{Cluster.Status()}");
                Thread.Sleep(50);
            }
        }
    }

    private static void Report(string fault, TimeSpan elapsed, string node, List<Met> met) =>
        TestContext.Progress.WriteLine($"{fault}: first write acknowledged on {node} {elapsed.TotalSeconds:F1} s after the fault; errors before it: {Summary(met)}");

    /// <summary>Each kind of error met, with its count and first message: "3 x node 1047 MySqlException (...)".</summary>
    private static string Summary(List<Met> met) =>
        met.Count == 0
            ? "none"
            : string.Join("; ", met.GroupBy(m => (m.Kind, m.Number, m.Type)).Select(g => $"{g.Count()} x {g.First()}"));

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

    /// <summary>What a write met: a Galera node's refusal, a connect or connection error (HAProxy cutting or switching), or something else.</summary>
    private enum ErrorKind
    {
        Node,
        Connection,
        Other,
    }

    /// <summary>One error a write met, <see cref="At"/> after the fault.</summary>
    private sealed record Met(TimeSpan At, int? Number, string Type, string Message, ErrorKind Kind)
    {
        /// <summary>What a Galera node answers when it cannot take the write: 1047 (refusing queries, not synced, not primary), 1180 (lost the primary component mid-write), 1290 (read-only).</summary>
        private static readonly int[] NodeErrors = [1047, 1180, 1290];

        /// <summary>Connection lost or not made: 0 (MySqlConnector's "Failed to read the result set" and the like), 1042 (connect), 2006, 2013 (gone away, lost).</summary>
        private static readonly int[] ConnectionErrors = [0, 1042, 2006, 2013];

        public static Met Of(Exception e, TimeSpan at)
        {
            var number = (e as MySqlException)?.Number;
            var kind = number is { } n && NodeErrors.Contains(n) ? ErrorKind.Node
                : (number is { } c && ConnectionErrors.Contains(c)) || LostConnection(e) ? ErrorKind.Connection
                : ErrorKind.Other;
            return new Met(at, number, e.GetType().Name, e.Message, kind);
        }

        /// <summary>A socket or stream error anywhere in the chain: what a cut connection raises, wrapped or not.</summary>
        private static bool LostConnection(Exception e)
        {
            for (Exception? x = e; x is not null; x = x.InnerException)
            {
                if (x is System.Net.Sockets.SocketException or System.IO.IOException or MySqlEndOfStreamException or TimeoutException)
                    return true;
            }

            return false;
        }

        public override string ToString() =>
            $"{Kind.ToString().ToLowerInvariant()} {(Number is { } n ? n.ToString(CultureInfo.InvariantCulture) + " " : string.Empty)}{Type} at {At.TotalSeconds:F1} s (\"{Message}\")";
    }
}
