using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using MySql.Data.MySqlClient;
using NHKeepAlive.Tests.Infrastructure;
using Spectre.Console;

namespace NHKeepAlive.Demo;

/// <summary>
/// Runs the same workload on the stock configuration and on NHKeepAlive through four faults that
/// cause "MySQL server has gone away", and shows what each configuration's callers saw.
/// </summary>
internal static class Program
{
    private const int WaitTimeoutSeconds = 3;

    public static int Main(string[] args)
    {
        var chart = args.Length > 0 ? args[0] : Path.Combine("docs", "demo-latency.png");
        var root = args.Length > 1 ? args[1] : Directory.GetCurrentDirectory();
        var clusterChart = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(chart))!, "demo-cluster.png");
        // NHK_DEMO_ACTS=server or =cluster runs one act only (default: both).
        var acts = Environment.GetEnvironmentVariable("NHK_DEMO_ACTS") ?? "server,cluster";
        if (acts.Contains("server", StringComparison.OrdinalIgnoreCase))
            ServerAct(chart);
        if (acts.Contains("cluster", StringComparison.OrdinalIgnoreCase))
            ClusterAct.Run(root, clusterChart);
        return 0;
    }

    private static void ServerAct(string chart)
    {
        var server = Server.FromEnvironment();
#if WITH_NHIBERNATE
        const bool nhibernate = true;
        AnsiConsole.MarkupLine("[bold]NHKeepAlive demo[/]: the workload runs through [green]NHibernate[/] sessions.");
#else
        const bool nhibernate = false;
        AnsiConsole.MarkupLine("[bold]NHKeepAlive demo[/]: NHibernate is [yellow]not available[/] here (its packages cannot be restored), so the same workload runs at the connection level.");
#endif
        AnsiConsole.MarkupLine($"Server: MariaDB {Markup.Escape(server.Version)} on 127.0.0.1:{server.Port}, wait_timeout set to {WaitTimeoutSeconds} s; both configurations use Connection Timeout=5 and Default Command Timeout=5.");
        AnsiConsole.WriteLine();

        var runs = new List<Run>();
        foreach (var keepAlive in new[] { false, true })
        {
            using var proxy = new ChaosProxy(server.Port);
            var cs = server.ConnectionString(proxy.Port);
            server.Prepare(WaitTimeoutSeconds);
            var app = CreateApp(cs, keepAlive, nhibernate);
            using (app)
                runs.Add(Scenario.Run(app, server, proxy));
        }

        server.Restore();
        PrintTable(runs);
        Chart.Save(runs, chart);
        AnsiConsole.MarkupLine($"Latency chart: [link]{Markup.Escape(chart)}[/]");
        AnsiConsole.WriteLine();
    }

    private static IDemoApp CreateApp(string cs, bool keepAlive, bool nhibernate)
    {
#if WITH_NHIBERNATE
        if (nhibernate)
            return new NHibernateApp(cs, keepAlive);
#endif
        return keepAlive ? new KeepAliveApp(cs) : new StockApp(cs);
    }

    private static void PrintTable(List<Run> runs)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]What callers saw[/]");
        table.AddColumn("configuration");
        table.AddColumn(new TableColumn("faults injected").RightAligned());
        table.AddColumn(new TableColumn("requests").RightAligned());
        table.AddColumn(new TableColumn("errors surfaced").RightAligned());
        table.AddColumn(new TableColumn("worst latency").RightAligned());
        table.AddColumn(new TableColumn("median").RightAligned());
        foreach (var run in runs)
        {
            var errors = run.Samples.Count(s => s.Error is not null);
            var latencies = run.Samples.Select(s => s.Milliseconds).OrderBy(x => x).ToList();
            table.AddRow(
                Markup.Escape(run.Name),
                run.Faults.Count.ToString(CultureInfo.InvariantCulture),
                run.Samples.Count.ToString(CultureInfo.InvariantCulture),
                errors == 0 ? "[green]0[/]" : $"[red]{errors}[/]",
                $"{latencies.Max():0} ms",
                $"{latencies[latencies.Count / 2]:0.0} ms");
        }

        AnsiConsole.Write(table);
        var phases = new Table().Border(TableBorder.Rounded).Title("[bold]Errors after each fault (pooled + held requests)[/]");
        phases.AddColumn("traffic");
        foreach (var run in runs)
            phases.AddColumn(new TableColumn(Markup.Escape(run.Name)).RightAligned());
        foreach (var phase in runs[0].Samples.Select(s => s.Phase).Distinct())
        {
            phases.AddRow([Markup.Escape(phase), .. runs.Select(r =>
            {
                var n = r.Samples.Count(s => s.Phase == phase && s.Error is not null);
                var of = r.Samples.Count(s => s.Phase == phase);
                return n == 0 ? $"[green]0[/] / {of}" : $"[red]{n}[/] / {of}";
            })]);
        }

        AnsiConsole.Write(phases);
        foreach (var run in runs)
        {
            foreach (var first in run.Samples.Where(s => s.Error is not null).GroupBy(s => s.Error!.GetType().Name + ": " + FirstLine(s.Error!)).Take(4))
                AnsiConsole.MarkupLine($"  [grey]{Markup.Escape(run.Name)}[/] [red]{first.Count()}×[/] {Markup.Escape(first.Key)}");
        }
    }

    internal static string FirstLine(Exception e)
    {
        var message = e.Message.Split('\n')[0];
        return message.Length > 140 ? message[..140] + "…" : message;
    }
}

internal sealed record Sample(double AtSeconds, double Milliseconds, string Kind, string Phase, Exception? Error);

internal sealed record Fault(double AtSeconds, string Name, string Short);

internal sealed class Run(string name)
{
    public string Name { get; } = name;

    public List<Sample> Samples { get; } = [];

    public List<Fault> Faults { get; } = [];
}

/// <summary>The timeline: steady traffic, then each fault followed by more traffic.</summary>
internal static class Scenario
{
    private static int s_nextId;

    public static Run Run(IDemoApp app, Server server, ChaosProxy proxy)
    {
        var run = new Run(app.Name);
        var clock = Stopwatch.StartNew();
        AnsiConsole.Status().Start($"[bold]{Markup.Escape(app.Name)}[/]", ctx =>
        {
            void Traffic(string phase, int requests)
            {
                ctx.Status($"[bold]{Markup.Escape(app.Name)}[/]: {phase}: {requests} requests");
                for (var i = 0; i < requests; i++)
                {
                    if (i > 0)
                        Thread.Sleep(40);
                    Request(app.PooledRequest, "pooled", phase);
                    Request(app.HeldRequest, "held", phase);
                }
            }

            void Request(Action<int> request, string kind, string phase)
            {
                var started = clock.Elapsed.TotalSeconds;
                var watch = Stopwatch.StartNew();
                Exception? error = null;
                try
                {
                    request(Interlocked.Increment(ref s_nextId));
                }
                catch (Exception e)
                {
                    error = e;
                }

                run.Samples.Add(new Sample(started, watch.Elapsed.TotalMilliseconds, kind, phase, error));
                var mark = error is null ? "[green]ok[/]" : $"[red]{Markup.Escape(error.GetType().Name)}[/]";
                if (error is not null || watch.ElapsedMilliseconds > 200)
                    AnsiConsole.MarkupLine($"  {phase}, {kind} request: {mark} after {watch.ElapsedMilliseconds} ms");
            }

            void Inject(string name, string shortName, Action fault)
            {
                ctx.Status($"[bold]{Markup.Escape(app.Name)}[/]: [yellow]{name}[/]");
                app.RenewHeld();
                app.HeldRequest(Interlocked.Increment(ref s_nextId)); // the long-lived connection this fault will meet
                run.Faults.Add(new Fault(clock.Elapsed.TotalSeconds, name, shortName));
                AnsiConsole.MarkupLine($"[yellow]fault[/] {Markup.Escape(name)} ({Markup.Escape(app.Name)})");
                fault();
            }

            // A burst of requests, then every connection of the application KILLed as soon as the
            // burst has given them back (well inside NHKeepAlive's 500 ms validation bypass window),
            // then the next burst: a server or proxy that closes connections just after their last use.
            void KillRightAfterUse()
            {
                ctx.Status($"[bold]{Markup.Escape(app.Name)}[/]: [yellow]KILL right after use[/]");
                app.RenewHeld();
                using var admin = server.OpenAdmin(); // opened before the burst, so that the KILLs follow it at once
                Traffic("steady", 6);
                var returned = clock.Elapsed;
                run.Faults.Add(new Fault(returned.TotalSeconds, "KILL right after use", "KILL after use"));
                var killed = server.KillAll(admin);
                var after = (clock.Elapsed - returned).TotalMilliseconds;
                AnsiConsole.MarkupLine($"[yellow]fault[/] KILL right after use ({Markup.Escape(app.Name)}): {killed} connections KILLed {after:0} ms after the burst gave them back");
            }

            // Warm-up (JIT, first connections), not measured.
            app.PooledRequest(Interlocked.Increment(ref s_nextId));
            app.HeldRequest(Interlocked.Increment(ref s_nextId));
            clock.Restart();
            Traffic("steady", 10);
            Inject("idle past wait_timeout", "idle", () => Thread.Sleep(TimeSpan.FromSeconds(4.5)));
            Traffic("after idle", 6);
            Inject("KILL every connection", "KILL", () => { server.KillAll(); Thread.Sleep(600); });
            Traffic("after KILL", 6);
            Inject("server restart", "restart", () => { server.Restart(); Thread.Sleep(600); });
            Traffic("after restart", 6);
            KillRightAfterUse();
            Traffic("after KILL right after use", 6);
            Inject("NAT forgets idle flows (2 s)", "NAT cut", () =>
            {
                proxy.CutIdleFlowsAfter(TimeSpan.FromSeconds(2), silently: true);
                Thread.Sleep(TimeSpan.FromSeconds(2.6));
            });
            Traffic("after NAT cut", 6);
            proxy.CutIdleFlowsAfter(TimeSpan.Zero, silently: true);
        });
        var errors = run.Samples.Count(s => s.Error is not null);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(app.Name)}[/]: {run.Samples.Count} requests, {(errors == 0 ? "[green]0 errors[/]" : $"[red]{errors} errors[/]")}, worst {run.Samples.Max(s => s.Milliseconds):0} ms");
        AnsiConsole.WriteLine();
        return run;
    }
}

/// <summary>The throwaway server build/demo.sh started (NHK_TEST_* variables), and what the demo does to it.</summary>
internal sealed class Server
{
    private readonly string _host;
    private readonly string _user;
    private readonly string _password;
    private readonly string _database;
    private long _waitTimeoutBefore = 28800;

    private Server(string host, int port, string user, string password, string database, string? control)
    {
        _host = host;
        Port = port;
        _user = user;
        _password = password;
        _database = database;
        Control = control;
        using var admin = Admin();
        Version = Convert.ToString(Scalar(admin, "SELECT VERSION()"), CultureInfo.InvariantCulture) ?? "?";
    }

    public int Port { get; }

    public string Version { get; }

    private string? Control { get; }

    public static Server FromEnvironment()
    {
        string Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : throw new InvalidOperationException($"{name} is not set: run the demo with build/demo.sh, which starts a throwaway MariaDB.");
        return new Server(Env("NHK_TEST_MYSQL_HOST"), int.Parse(Env("NHK_TEST_MYSQL_PORT"), CultureInfo.InvariantCulture), Env("NHK_TEST_MYSQL_USER"),
            Env("NHK_TEST_MYSQL_PASSWORD"), Env("NHK_TEST_MYSQL_DATABASE"), Environment.GetEnvironmentVariable("NHK_TEST_SERVER_CONTROL"));
    }

    public string ConnectionString(int port) =>
        $"Server={_host};Port={port};User ID={_user};Password={_password};Database={_database};SslMode=Disabled;Connection Timeout=5;Default Command Timeout=5";

    public void Prepare(int waitTimeoutSeconds)
    {
        using var admin = Admin();
        _waitTimeoutBefore = Convert.ToInt64(Scalar(admin, "SELECT @@GLOBAL.wait_timeout"), CultureInfo.InvariantCulture);
        Execute(admin, "CREATE TABLE IF NOT EXISTS demo_requests (id INT PRIMARY KEY) ENGINE=InnoDB");
        Execute(admin, $"SET GLOBAL wait_timeout = {waitTimeoutSeconds}");
    }

    public void Restore()
    {
        using var admin = Admin();
        Execute(admin, $"SET GLOBAL wait_timeout = {_waitTimeoutBefore}");
    }

    public void KillAll()
    {
        using var admin = Admin();
        KillAll(admin);
    }

    /// <summary>An open connection for <see cref="KillAll(MySqlConnection)"/>, made ahead of time.</summary>
    public MySqlConnection OpenAdmin() => Admin();

    /// <summary>KILLs every connection of the demo's user but <paramref name="admin"/>; returns how many.</summary>
    public int KillAll(MySqlConnection admin)
    {
        var ids = new List<long>();
        using (var command = admin.CreateCommand())
        {
            command.CommandText = "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = @u AND ID <> CONNECTION_ID()";
            command.Parameters.AddWithValue("@u", _user);
            using var reader = command.ExecuteReader();
            while (reader.Read())
                ids.Add(reader.GetInt64(0));
        }

        foreach (var id in ids)
        {
            try
            {
                Execute(admin, $"KILL {id}");
            }
            catch (MySqlException)
            {
                // Gone already.
            }
        }

        return ids.Count;
    }

    public void Restart()
    {
        if (Control is null)
            throw new InvalidOperationException("NHK_TEST_SERVER_CONTROL is not set: the demo restarts the server through build/mariadb.sh.");
        using var process = Process.Start(new ProcessStartInfo("bash", $"\"{Control}\" restart") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true })!;
        process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(60_000) || process.ExitCode != 0)
            throw new InvalidOperationException("build/mariadb.sh restart failed: " + process.StandardError.ReadToEnd());
        using var admin = Admin(); // a restart forgets SET GLOBAL: put the short wait_timeout back
        Execute(admin, "SET GLOBAL wait_timeout = 3");
    }

    private MySqlConnection Admin()
    {
        var connection = new MySqlConnection($"Server={_host};Port={Port};User ID={_user};Password={_password};Database={_database};SslMode=Disabled;Pooling=false");
        connection.Open();
        return connection;
    }

    private static object? Scalar(MySqlConnection c, string sql)
    {
        using var command = c.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static void Execute(MySqlConnection c, string sql)
    {
        using var command = c.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
