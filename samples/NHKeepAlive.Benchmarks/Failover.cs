using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;
using NHKeepAlive.Samples;

namespace NHKeepAlive.Benchmarks;

/// <summary>
/// The failover table (issue 12): on build/cluster.sh's throwaway Galera cluster, 8 writers (open,
/// INSERT with a client-made key, close, 20 ms pause) on the stock pools through HAProxy and on
/// NHKeepAlive with the host list, while node 1 (the write node of both) refuses queries, turns
/// read-only or is killed, then is healed or restarted.
/// </summary>
internal static class Failover
{
    public const string Begin = "<!-- failover table: begin -->";
    public const string End = "<!-- failover table: end -->";
    private const int Writers = 8;
    private static readonly TimeSpan s_pause = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan s_warmUp = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan s_faultHeld = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_failbackWindow = TimeSpan.FromSeconds(4);
    private static readonly TimeSpan s_keepAlive = TimeSpan.FromSeconds(1);

    private sealed record Outcome(
        string Fault, string Config, int Acked, int Errors, string Numbers, TimeSpan? FirstHealthy, TimeSpan? AfterWritable,
        TimeSpan Longest, TimeSpan? Failback, int ErrorsAfterHeal, int Lost, int Phantom, TimeSpan? Writable);

    /// <summary>The Markdown section (between <see cref="Begin"/> and <see cref="End"/>), or a sentence saying why it was skipped.</summary>
    public static string Measure(string root)
    {
        var total = Stopwatch.StartNew();
        var cluster = ClusterControl.Acquire(root, m => Console.WriteLine("  " + m), out var skip);
        if (cluster is null)
        {
            Console.WriteLine($"  failover table skipped: {skip}");
            return $"{Begin}\n### Failover on a Galera cluster\n\nNot measured in this run: {skip}.\n{End}\n";
        }

        var outcomes = new List<Outcome>();
        string version;
        try
        {
            cluster.Restore();
            cluster.PrepareTable();
            version = ServerVersion(cluster);
            var stamp = DateTime.UtcNow.ToString("HHmmss", CultureInfo.InvariantCulture);
            // NHK_BENCH_FAILOVER_FAULTS=reject,readonly,kill (the default) picks the faults.
            var faults = (Environment.GetEnvironmentVariable("NHK_BENCH_FAILOVER_FAULTS") ?? "reject,readonly,kill").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var fault in faults)
            {
                foreach (var make in new Func<WriterConfig>[]
                {
                    () => WriterConfig.Stock(cluster, MySqlDriver.MySqlData),
                    () => WriterConfig.Stock(cluster, MySqlDriver.MySqlConnector),
                    () => WriterConfig.KeepAlive(cluster, MySqlDriver.MySqlData, s_keepAlive),
                    () => WriterConfig.KeepAlive(cluster, MySqlDriver.MySqlConnector, s_keepAlive),
                })
                {
                    using var config = make();
                    var outcome = Case(cluster, config, fault, $"{stamp}-{fault}-{outcomes.Count}");
                    outcomes.Add(outcome);
                    Console.WriteLine($"  {fault,-8} {config.Name,-38} acked {outcome.Acked,5}, errors {outcome.Errors,5} ({outcome.Numbers}), first healthy {Ms(outcome.FirstHealthy)}{(outcome.AfterWritable is { } w ? $" ({Ms(w)} after writable)" : string.Empty)}, longest {Ms(outcome.Longest)}, failback {Ms(outcome.Failback)}, errors after heal {outcome.ErrorsAfterHeal}, lost {outcome.Lost}, phantom {outcome.Phantom}");
                    cluster.Restore();
                }
            }
        }
        finally
        {
            cluster.Stop();
        }

        return Render(outcomes, cluster, version, total.Elapsed);
    }

    private static Outcome Case(ClusterControl cluster, WriterConfig config, string fault, string tag)
    {
        var run = new WriteRun(config, tag, Writers, s_pause);
        TimeSpan faultAt, healedAt;
        TimeSpan? writable = null;
        try
        {
            run.Until(s_warmUp);
            faultAt = run.Elapsed;
            switch (fault)
            {
                case "reject":
                    cluster.Reject(1);
                    break;
                case "readonly":
                    cluster.ReadOnly(1);
                    break;
                default:
                    cluster.Kill(1);
                    break;
            }

            if (fault == "kill")
            {
                // A bare writer on node 2 says when the cluster accepts writes again (Galera stalls
                // writes for about 5 s after a member dies: evs.suspect_timeout).
                if (cluster.WaitUntilNodeAcceptsWrites(2, TimeSpan.FromSeconds(20)))
                    writable = run.Elapsed - faultAt;
                run.Until(run.Elapsed + TimeSpan.FromSeconds(2));
                cluster.StartNode(1);
            }
            else
            {
                run.Until(faultAt + s_faultHeld);
                cluster.Heal(1);
            }

            healedAt = run.Elapsed;
            run.Until(healedAt + s_failbackWindow);
        }
        finally
        {
            run.Stop();
        }

        var results = run.Results;
        var during = results.Where(r => r.Error is not null && r.Finished >= faultAt && r.Started < healedAt).ToList();
        var afterHeal = results.Where(r => r.Error is not null && r.Started >= healedAt).ToList();
        var firstHealthy = results.Where(r => r.Node is not null && r.Node != "node1" && r.Finished >= faultAt).Select(r => (TimeSpan?)(r.Finished - faultAt)).Min();
        var failback = results.Where(r => r.Node == "node1" && r.Started >= healedAt).Select(r => (TimeSpan?)(r.Finished - healedAt)).Min();
        var stored = cluster.StoredIds(tag);
        var acked = results.Where(r => r.Node is not null).ToList();
        var lost = acked.Count(r => !stored.Contains(r.Id));
        var phantom = results.Count(r => r.Error is not null && stored.Contains(r.Id));
        var numbers = string.Join(", ", during.GroupBy(r => r.ErrorNumber is { } n and not 0 ? n.ToString(CultureInfo.InvariantCulture) : r.ErrorNumber == 0 ? "no number (connection lost)" : r.Error!.GetType().Name)
            .OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} × {g.Key}"));
        return new Outcome(
            fault, config.Name, acked.Count, during.Count, numbers.Length == 0 ? "none" : numbers, firstHealthy,
            writable is { } w && firstHealthy is { } f ? f - w : null,
            results.Count == 0 ? TimeSpan.Zero : results.Max(r => r.Latency), failback, afterHeal.Count, lost, phantom, writable);
    }

    private static string Render(List<Outcome> outcomes, ClusterControl cluster, string version, TimeSpan elapsed)
    {
        var md = new StringBuilder();
        md.AppendLine(Begin);
        md.AppendLine("### Failover on a Galera cluster");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Measured {DateTime.UtcNow:yyyy-MM-dd} by `NHK_BENCH_FAILOVER=1 build/bench.sh` on the same machine ({Environment.ProcessorCount} cores, shared and noisy): build/cluster.sh's throwaway 3-node Galera cluster (MariaDB {version}) on loopback, with HAProxy in front (health check `{cluster.HaproxyCheck}`{(cluster.HaproxyCheck == "wsrep" ? ": the node's wsrep state, reject_queries and read_only, so HAProxy takes a faulty node out after 1-2 s and cuts its sessions" : ": a login only")}; timeouts {cluster.HaproxyTimeoutSeconds} s; node 1 is the writer, nodes 2 and 3 backups). {Writers} writers, each looping {{open; `INSERT` a row with a client-made key, reading back `@@wsrep_node_name` in the same round trip; close; 20 ms pause}}. The stock pools (defaults, `Connection Timeout=5`) go through HAProxy; NHKeepAlive gets the host list (`Server={cluster.HostList};Port=…`, defaults but `KeepAliveInterval` = {s_keepAlive.TotalSeconds:0} s) and reports each failed write with `lease.ReportFailure(e)`. Each case: {s_warmUp.TotalSeconds:0} s of writes, the fault on node 1, held {s_faultHeld.TotalSeconds:0} s (`kill -9`: until a bare connection to node 2 commits a write, +2 s, then `start-node 1`), then `heal 1` (or `start-node 1`, which return once node 1 is Synced) and {s_failbackWindow.TotalSeconds:0} s more. One run per cell; the whole table took {elapsed.TotalMinutes:0.0} min."));
        md.AppendLine();
        md.AppendLine("- **errors**: writes that failed between the fault and node 1 being Synced again, by error number (the caller saw each; nothing is retried).");
        md.AppendLine("- **first write on a healthy node**: from the fault to the first write acknowledged by node 2 or 3. For `kill -9`, in brackets: from the moment the cluster accepted writes again (a bare connection to node 2 committing, polled every 50 ms, so a negative figure means the writers got there first; Galera stalls writes ~5 s after a member dies).");
        md.AppendLine("- **longest write**: the slowest single write, including its `Open()` (a hang shows here; after `kill -9` every configuration has writes that wait out Galera's stall).");
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"- **failback**: from node 1 being Synced again to the first write acknowledged by node 1 (\"none\": not within {s_failbackWindow.TotalSeconds:0} s); errors after that moment beside it."));
        md.AppendLine("- **lost**: acknowledged writes missing from the table afterwards (read causally on node 2); **phantom**: writes whose caller got an error but that had committed.");
        md.AppendLine();
        md.AppendLine("| fault on node 1 | configuration | acked | errors | first write on a healthy node | longest write | failback (errors after) | lost | phantom |");
        md.AppendLine("|---|---|---:|---|---:|---:|---:|---:|---:|");
        foreach (var o in outcomes)
        {
            var fault = o.Fault switch
            {
                "reject" => "refuses queries (`wsrep_reject_queries=ALL`)",
                "readonly" => "read-only (`read_only=1`)",
                _ => $"`kill -9`{(o.Writable is { } w ? string.Create(CultureInfo.InvariantCulture, $" (writable after {w.TotalSeconds:0.0} s)") : string.Empty)}",
            };
            var keepAlive = o.Config.StartsWith("NHKeepAlive", StringComparison.Ordinal);
            string B(string s) => keepAlive ? $"**{s}**" : s;
            var first = o.FirstHealthy is { } f ? Ms(f) + (o.AfterWritable is { } a ? $" ({Ms(a)})" : string.Empty) : "none";
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {fault} | {o.Config} | {o.Acked:N0} | {B(o.Errors.ToString("N0", CultureInfo.InvariantCulture))}{(o.Errors > 0 ? $" ({o.Numbers})" : string.Empty)} | {B(first)} | {Ms(o.Longest)} | {B(Ms(o.Failback))} ({o.ErrorsAfterHeal}) | {o.Lost} | {o.Phantom} |"));
        }

        md.AppendLine();
        md.AppendLine(End);
        return md.ToString();
    }

    private static string Ms(TimeSpan? t) =>
        t is not { } v ? "none" : v.TotalSeconds >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{v.TotalSeconds:0.0} s") : string.Create(CultureInfo.InvariantCulture, $"{v.TotalMilliseconds:0} ms");

    private static string ServerVersion(ClusterControl cluster)
    {
        using var c = new MySqlConnector.MySqlConnection(cluster.NodeConnectionString(2));
        c.Open();
        return c.ServerVersion;
    }

    /// <summary>The failover section of an earlier report, kept when this run does not measure it.</summary>
    public static string? Previous(string report)
    {
        if (!System.IO.File.Exists(report))
            return null;
        var text = System.IO.File.ReadAllText(report);
        var begin = text.IndexOf(Begin, StringComparison.Ordinal);
        var end = text.IndexOf(End, StringComparison.Ordinal);
        return begin >= 0 && end > begin ? text[begin..(end + End.Length)] + "\n" : null;
    }
}
