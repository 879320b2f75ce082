using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using NHKeepAlive.Samples;
using ScottPlot;
using Spectre.Console;

namespace NHKeepAlive.Demo;

/// <summary>
/// The cluster act: the same writers on the stock MySql.Data pool through HAProxy and on NHKeepAlive
/// with the host list, while node 1 of a throwaway Galera cluster refuses queries, turns read-only and
/// is killed (each healed or restarted after). At the connection level (NHibernate cannot be restored
/// here); one panel per configuration on a shared time axis, as the single-server chart.
/// </summary>
internal static class ClusterAct
{
    private const int Writers = 4;
    private static readonly TimeSpan s_pause = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan s_keepAlive = TimeSpan.FromSeconds(1);

    private static readonly IReadOnlyList<SeriesKind> s_kinds =
    [
        new("node1", "written on node 1", MarkerShape.FilledCircle, 4, Colors.SteelBlue, "failed write", MarkerShape.Eks),
        new("other", "written on node 2 or 3", MarkerShape.FilledSquare, 4, Colors.DarkOrange, null, MarkerShape.Eks),
    ];

    private sealed record Phase(string Fault, double At, double? FirstElsewhere, int Errors, double? Failback, double? HealedAt);

    /// <summary>Runs the act and draws <paramref name="chart"/>; returns false (saying why) when the cluster cannot run here.</summary>
    public static bool Run(string root, string chart)
    {
        AnsiConsole.MarkupLine("[bold]Cluster act[/]: a 3-node MariaDB Galera cluster with HAProxy in front (build/cluster.sh); node 1 takes the writes.");
        var cluster = ClusterControl.Acquire(root, m => AnsiConsole.MarkupLine("  " + Markup.Escape(m)), out var skip);
        if (cluster is null)
        {
            AnsiConsole.MarkupLine($"[yellow]Cluster act skipped[/]: {Markup.Escape(skip ?? "unknown reason")}.");
            return false;
        }

        void StopOnCancel(object? sender, ConsoleCancelEventArgs e) => cluster.Stop();
        Console.CancelKeyPress += StopOnCancel;
        var runs = new List<Run>();
        var phases = new List<(string Config, List<Phase> Phases)>();
        try
        {
            cluster.Restore();
            cluster.PrepareTable();
            AnsiConsole.MarkupLine($"  {Writers} writers, each looping {{open; INSERT a row with a client-made key; close; {s_pause.TotalMilliseconds:0} ms pause}}. Stock: MySql.Data's pool through HAProxy (health check: {Markup.Escape(cluster.HaproxyCheck)}). NHKeepAlive: MySql.Data with Server={Markup.Escape(cluster.HostList)}, keepalive every {s_keepAlive.TotalSeconds:0} s.");
            foreach (var make in new Func<WriterConfig>[]
            {
                () => WriterConfig.Stock(cluster, MySqlDriver.MySqlData),
                () => WriterConfig.KeepAlive(cluster, MySqlDriver.MySqlData, s_keepAlive),
            })
            {
                using var config = make();
                var (run, list) = Timeline(cluster, config);
                runs.Add(run);
                phases.Add((config.Name, list));
                cluster.Restore();
            }
        }
        finally
        {
            Console.CancelKeyPress -= StopOnCancel;
            cluster.Stop();
        }

        Print(runs, phases);
        Chart.Save(runs, chart, s_kinds, "writes");
        AnsiConsole.MarkupLine($"Cluster latency chart: [link]{Markup.Escape(chart)}[/]");
        return true;
    }

    private static (Run Run, List<Phase> Phases) Timeline(ClusterControl cluster, WriterConfig config)
    {
        var run = new Run(config.Name);
        var faults = new List<(string Name, double At, double HealedAt)>();
        var writes = new WriteRun(config, "demo-" + DateTime.UtcNow.ToString("HHmmssfff", CultureInfo.InvariantCulture), Writers, s_pause);
        AnsiConsole.Status().Start($"[bold]{Markup.Escape(config.Name)}[/]", ctx =>
        {
            void Mark(string name, string shortName)
            {
                run.Faults.Add(new Fault(writes.Elapsed.TotalSeconds, name, shortName));
                ctx.Status($"[bold]{Markup.Escape(config.Name)}[/]: [yellow]{Markup.Escape(name)}[/]");
                AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(name)}[/] ({Markup.Escape(config.Name)}) at {writes.Elapsed.TotalSeconds:0.0} s");
            }

            writes.Until(TimeSpan.FromSeconds(2));
            foreach (var (name, shortName, inject) in new (string, string, Action)[]
            {
                ("node 1 refuses queries", "reject", () => cluster.Reject(1)),
                ("node 1 read-only", "read-only", () => cluster.ReadOnly(1)),
                ("kill -9 node 1", "kill -9", () => cluster.Kill(1)),
            })
            {
                Mark(name, shortName);
                var at = writes.Elapsed.TotalSeconds;
                inject();
                if (shortName == "kill -9")
                {
                    cluster.WaitUntilNodeAcceptsWrites(2, TimeSpan.FromSeconds(20));
                    writes.Until(writes.Elapsed + TimeSpan.FromSeconds(2));
                    cluster.StartNode(1);
                    Mark("node 1 restarted and Synced", "back");
                }
                else
                {
                    writes.Until(TimeSpan.FromSeconds(at + 4));
                    cluster.Heal(1);
                    Mark("node 1 healed and Synced", "healed");
                }

                faults.Add((name, at, writes.Elapsed.TotalSeconds));
                writes.Until(writes.Elapsed + TimeSpan.FromSeconds(3.5));
                if (!config.IsKeepAlive && shortName != "kill -9")
                {
                    // The stock pool never moves back by itself: so that the next fault meets it on
                    // node 1 too, wait until HAProxy routes to node 1 again and empty the pool, as
                    // an operator would.
                    cluster.Run("wait-haproxy 1 UP 30", TimeSpan.FromSeconds(40));
                    config.ClearStockPool();
                    Mark("stock pool cleared by hand (it never fails back)", "cleared");
                    writes.Until(writes.Elapsed + TimeSpan.FromSeconds(1));
                }
                else if (shortName != "kill -9")
                {
                    writes.Until(writes.Elapsed + TimeSpan.FromSeconds(1));
                }
            }

            writes.Stop();
        });

        var results = writes.Results;
        foreach (var r in results)
            run.Samples.Add(new Sample(r.Started.TotalSeconds, r.Latency.TotalMilliseconds, r.Node is null or "node1" ? "node1" : "other", "cluster", r.Error));
        var list = faults.Select(f =>
        {
            var errors = results.Count(r => r.Error is not null && r.Finished.TotalSeconds >= f.At && r.Started.TotalSeconds < f.HealedAt);
            var first = results.Where(r => r.Node is { } n && n != "node1" && r.Finished.TotalSeconds >= f.At).Select(r => (double?)(r.Finished.TotalSeconds - f.At)).Min();
            var back = results.Where(r => r.Node == "node1" && r.Started.TotalSeconds >= f.HealedAt).Select(r => (double?)(r.Finished.TotalSeconds - f.HealedAt)).Min();
            return new Phase(f.Name, f.At, first, errors, back, f.HealedAt);
        }).ToList();
        var total = results.Count(r => r.Error is not null);
        var stored = cluster.StoredIds(writes.RunTag);
        var lost = results.Count(r => r.Node is not null && !stored.Contains(r.Id));
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(config.Name)}[/]: {results.Count} writes, {(total == 0 ? "[green]0 errors[/]" : $"[red]{total} errors[/]")}, worst {results.Max(r => r.Latency.TotalMilliseconds):0} ms, {lost} acknowledged writes lost");
        AnsiConsole.WriteLine();
        return (run, list);
    }

    private static void Print(List<Run> runs, List<(string Config, List<Phase> Phases)> phases)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]Cluster act: what the writers saw after each fault on node 1[/]");
        table.AddColumn("fault");
        foreach (var (config, _) in phases)
            table.AddColumn(new TableColumn(Markup.Escape(config)).RightAligned());
        static string S(double? s) => s is { } v ? (v < 1 ? $"{v * 1000:0} ms" : $"{v:0.0} s") : "none";
        foreach (var fault in phases[0].Phases.Select(p => p.Fault))
        {
            table.AddRow([Markup.Escape(fault), .. phases.Select(p =>
            {
                var ph = p.Phases.Single(x => x.Fault == fault);
                var errors = ph.Errors == 0 ? "[green]0 errors[/]" : $"[red]{ph.Errors} errors[/]";
                return $"{errors}; writes on node 2/3 after {S(ph.FirstElsewhere)}; back on node 1 {S(ph.Failback)} after it was Synced";
            })]);
        }

        AnsiConsole.Write(table);
        foreach (var run in runs)
        {
            foreach (var first in run.Samples.Where(s => s.Error is not null).GroupBy(s => s.Error!.GetType().Name + ": " + Program.FirstLine(s.Error!)).OrderByDescending(g => g.Count()).Take(3))
                AnsiConsole.MarkupLine($"  [grey]{Markup.Escape(run.Name)}[/] [red]{first.Count()}×[/] {Markup.Escape(first.Key)}");
        }
    }
}
