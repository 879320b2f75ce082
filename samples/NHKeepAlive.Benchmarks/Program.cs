using System;
using System.Collections.Generic;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;

namespace NHKeepAlive.Benchmarks;

/// <summary>
/// Checkout + SELECT 1 + return, at 1, 8 and 32 callers, for NHKeepAlive and the stock pools of both
/// drivers, measured in one run on one server; then the first query after an idle past wait_timeout and
/// after a restart; then the keepalive's cost with 100 idle connections. Writes a Markdown report.
/// </summary>
internal static class Program
{
    private static readonly int[] s_callers = [1, 8, 32];

    public static int Main(string[] args)
    {
        var report = args.Length > 0 ? args[0] : Path.Combine("docs", "benchmarks.md");
        var seconds = double.Parse(Environment.GetEnvironmentVariable("NHK_BENCH_SECONDS") ?? "3", CultureInfo.InvariantCulture);
        var server = new Server();
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} by `build/bench.sh` on {Environment.ProcessorCount} cores against MariaDB {server.Version} on loopback, {seconds:0.#} s per cell after a warm-up. Work per operation: check a connection out, `SELECT 1`, give it back. CPU is the benchmark process's CPU time per operation (client side). Numbers swing with how busy the machine is; ratios come from the same run.");
        md.AppendLine();

        var groups = new (string Driver, Config[] Configs)[]
        {
            ("MySql.Data 26.10.0", [
                Config.MySqlDataStock(server), Config.KeepAlive(server, MySqlDriver.MySqlData), Config.Held(server, MySqlDriver.MySqlData)]),
            ("MySqlConnector 2.6.2", [
                Config.ConnectorStock(server, reset: true), Config.ConnectorStock(server, reset: false), Config.KeepAlive(server, MySqlDriver.MySqlConnector), Config.Held(server, MySqlDriver.MySqlConnector)]),
        };

        foreach (var (driver, configs) in groups)
        {
            Console.WriteLine($"== {driver}");
            var results = new Dictionary<(string, int), Result>();
            foreach (var config in configs)
            {
                foreach (var callers in s_callers)
                {
                    var result = Throughput.Measure(config, callers, TimeSpan.FromSeconds(seconds));
                    results[(config.Name, callers)] = result;
                    Console.WriteLine($"  {config.Name,-42} {callers,2} callers: {result.OpsPerSecond,9:N0} ops/s, {result.CpuMicrosPerOp,6:0.0} µs CPU/op, {result.Errors} errors");
                }

                config.Dispose();
            }

            md.AppendLine(CultureInfo.InvariantCulture, $"### {driver}: throughput (ops/s) and client CPU per operation");
            md.AppendLine();
            md.AppendLine("| configuration | " + string.Join(" | ", s_callers.Select(c => $"{c} caller{(c > 1 ? "s" : string.Empty)}")) + " |");
            md.AppendLine("|---|" + string.Concat(s_callers.Select(_ => "---:|")));
            foreach (var config in configs)
                md.AppendLine(CultureInfo.InvariantCulture, $"| {config.Name} | {string.Join(" | ", s_callers.Select(c => string.Create(CultureInfo.InvariantCulture, $"{results[(config.Name, c)].OpsPerSecond:N0} ({results[(config.Name, c)].CpuMicrosPerOp:0} µs)")))} |");
            md.AppendLine();
            var keepAlive = configs.Single(c => c.IsKeepAlive).Name;
            md.AppendLine("| NHKeepAlive's ratio to | " + string.Join(" | ", s_callers.Select(c => $"{c}")) + " | target |");
            md.AppendLine("|---|" + string.Concat(s_callers.Select(_ => "---:|")) + "---|");
            foreach (var other in configs.Where(c => !c.IsKeepAlive))
            {
                var target = other.Kind switch
                {
                    "stock" => "≥ 1.5×",
                    "noreset" => "≥ 0.9×",
                    _ => "≥ 0.85× at 1 caller",
                };
                md.AppendLine(CultureInfo.InvariantCulture, $"| {other.Name} | {string.Join(" | ", s_callers.Select(c => string.Create(CultureInfo.InvariantCulture, $"{results[(keepAlive, c)].OpsPerSecond / results[(other.Name, c)].OpsPerSecond:0.00}×")))} | {target} |");
            }

            md.AppendLine();
        }

        Console.WriteLine("== first query after a fault");
        md.AppendLine("### The first query after an idle past `wait_timeout`, and after a server restart");
        md.AppendLine();
        md.AppendLine("Four pooled connections idle; then one request. Latency of that request and whether it failed.");
        md.AppendLine();
        md.AppendLine("| configuration | after idle past wait_timeout (1 s) | after a server restart |");
        md.AppendLine("|---|---|---|");
        foreach (var make in new Func<Config>[] { () => Config.MySqlDataStock(server), () => Config.KeepAlive(server, MySqlDriver.MySqlData), () => Config.ConnectorStock(server, reset: true), () => Config.KeepAlive(server, MySqlDriver.MySqlConnector) })
        {
            var idle = FirstQuery.AfterIdle(server, make);
            var restart = FirstQuery.AfterRestart(server, make);
            Console.WriteLine($"  {idle.Name,-42} idle: {idle.Text}; restart: {restart.Text}");
            md.AppendLine(CultureInfo.InvariantCulture, $"| {idle.Name} | {idle.Text} | {restart.Text} |");
        }

        md.AppendLine();
        Console.WriteLine("== keepalive cost");
        var cost = KeepAliveCost.Measure(server);
        md.AppendLine("### What the keepalive costs");
        md.AppendLine();
        md.AppendLine(cost);
        Console.WriteLine(cost);

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(report))!);
        File.WriteAllText(report, md.ToString());
        Console.WriteLine($"report: {report}");
        return 0;
    }
}

internal sealed record Result(double OpsPerSecond, double CpuMicrosPerOp, long Errors);

/// <summary>One way of getting a connection for an operation.</summary>
internal sealed class Config : IDisposable
{
    private readonly Func<int, DbConnection> _take;
    private readonly Action<int, DbConnection> _give;
    private readonly Action _dispose;

    private Config(string name, string kind, Func<int, DbConnection> take, Action<int, DbConnection> give, Action dispose)
    {
        Name = name;
        Kind = kind;
        _take = take;
        _give = give;
        _dispose = dispose;
    }

    public string Name { get; }

    /// <summary>stock, noreset, keepalive or floor.</summary>
    public string Kind { get; }

    public bool IsKeepAlive => Kind == "keepalive";

    public DbConnection Take(int caller) => _take(caller);

    public void Give(int caller, DbConnection connection) => _give(caller, connection);

    public void Dispose() => _dispose();

    public static Config MySqlDataStock(Server server)
    {
        var cs = server.ConnectionString(MySqlDriver.MySqlData);
        return new Config("MySql.Data pool (default)", "stock",
            _ => { var c = new MySql.Data.MySqlClient.MySqlConnection(cs); c.Open(); return c; },
            (_, c) => c.Dispose(),
            MySql.Data.MySqlClient.MySqlConnection.ClearAllPools);
    }

    public static Config ConnectorStock(Server server, bool reset)
    {
        var cs = server.ConnectionString(MySqlDriver.MySqlConnector) + (reset ? string.Empty : ";ConnectionReset=false");
        return new Config(reset ? "MySqlConnector pool (default)" : "MySqlConnector pool, ConnectionReset=false", reset ? "stock" : "noreset",
            _ => { var c = new MySqlConnector.MySqlConnection(cs); c.Open(); return c; },
            (_, c) => c.Dispose(),
            MySqlConnector.MySqlConnection.ClearAllPools);
    }

    public static Config KeepAlive(Server server, MySqlDriver driver)
    {
        var pool = new KeepAlivePool(new KeepAliveOptions { ConnectionString = server.ConnectionString(driver), Driver = driver });
        return new Config($"NHKeepAlive on {(driver == MySqlDriver.MySqlData ? "MySql.Data" : "MySqlConnector")}", "keepalive", _ => pool.Rent(), (_, c) => pool.Return(c), pool.Dispose);
    }

    /// <summary>One connection per caller, opened once: the floor (a single round trip per operation).</summary>
    public static Config Held(Server server, MySqlDriver driver)
    {
        var cs = server.ConnectionString(driver) + ";Pooling=false";
        var held = new Dictionary<int, DbConnection>();
        var gate = new object();
        return new Config("one held connection per caller (floor)", "floor",
            caller =>
            {
                lock (gate)
                {
                    if (!held.TryGetValue(caller, out var c))
                    {
                        c = driver == MySqlDriver.MySqlData ? new MySql.Data.MySqlClient.MySqlConnection(cs) : new MySqlConnector.MySqlConnection(cs);
                        c.Open();
                        held[caller] = c;
                    }

                    return c;
                }
            },
            (_, _) => { },
            () =>
            {
                foreach (var c in held.Values)
                    c.Dispose();
            });
    }
}

internal static class Throughput
{
    public static Result Measure(Config config, int callers, TimeSpan duration)
    {
        long ops = 0;
        long errors = 0;
        var measuring = false;
        var stop = false;
        using var started = new CountdownEvent(callers);
        var threads = Enumerable.Range(0, callers).Select(caller => new Thread(() =>
        {
            started.Signal();
            while (!Volatile.Read(ref stop))
            {
                try
                {
                    var c = config.Take(caller);
                    using (var command = c.CreateCommand())
                    {
                        command.CommandText = "SELECT 1";
                        command.ExecuteScalar();
                    }

                    config.Give(caller, c);
                    if (Volatile.Read(ref measuring))
                        Interlocked.Increment(ref ops);
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        }) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        started.Wait();
        Thread.Sleep(TimeSpan.FromSeconds(0.7)); // warm-up: connections opened, JIT done
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref measuring, true);
        Thread.Sleep(duration);
        Volatile.Write(ref measuring, false);
        var elapsed = clock.Elapsed;
        var cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        Volatile.Write(ref stop, true);
        threads.ForEach(t => t.Join(TimeSpan.FromSeconds(30)));
        var count = Interlocked.Read(ref ops);
        return new Result(count / elapsed.TotalSeconds, count == 0 ? 0 : cpuUsed.TotalMilliseconds * 1000 / count, Interlocked.Read(ref errors));
    }
}

internal static class FirstQuery
{
    public sealed record Outcome(string Name, string Text);

    public static Outcome AfterIdle(Server server, Func<Config> make)
    {
        server.SetWaitTimeout(1);
        try
        {
            using var config = make();
            Warm(config);
            Thread.Sleep(TimeSpan.FromSeconds(2.5));
            return new Outcome(config.Name, Once(config));
        }
        finally
        {
            server.SetWaitTimeout(28800);
        }
    }

    public static Outcome AfterRestart(Server server, Func<Config> make)
    {
        using var config = make();
        Warm(config);
        Server.Restart();
        Thread.Sleep(600);
        return new Outcome(config.Name, Once(config));
    }

    private static void Warm(Config config)
    {
        var taken = Enumerable.Range(0, 4).Select(i => config.Take(i)).ToList();
        for (var i = 0; i < taken.Count; i++)
            config.Give(i, taken[i]);
    }

    private static string Once(Config config)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            var c = config.Take(0);
            using (var command = c.CreateCommand())
            {
                command.CommandText = "SELECT 1";
                command.ExecuteScalar();
            }

            config.Give(0, c);
            return $"{watch.Elapsed.TotalMilliseconds:0.0} ms, no error";
        }
        catch (Exception e)
        {
            return $"**error** after {watch.Elapsed.TotalMilliseconds:0} ms: {e.GetType().Name}";
        }
    }
}

internal static class KeepAliveCost
{
    public static string Measure(Server server)
    {
        const int connections = 100;
        var interval = TimeSpan.FromSeconds(1);
        var window = TimeSpan.FromSeconds(10);
        using var pool = new KeepAlivePool(new KeepAliveOptions
        {
            ConnectionString = server.ConnectionString(MySqlDriver.MySqlConnector),
            Driver = MySqlDriver.MySqlConnector,
            MaxPoolSize = connections,
            KeepAliveInterval = interval,
            ValidationBypassWindow = TimeSpan.FromMilliseconds(200),
        });
        var taken = Enumerable.Range(0, connections).Select(_ => pool.Rent()).ToList();
        taken.ForEach(c => pool.Return(c));
        Thread.Sleep(interval * 2);
        var pings = pool.GetStatistics().KeepAlivePings;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        Thread.Sleep(window);
        var cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        pings = pool.GetStatistics().KeepAlivePings - pings;
        var perPing = cpuUsed.TotalMilliseconds * 1000 / Math.Max(1, pings);
        var defaultPerHour = 3600 / KeepAliveOptions.DefaultKeepAliveInterval.TotalSeconds;
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{connections} idle connections (MySqlConnector), keepalive every {interval.TotalSeconds:0} s for {window.TotalSeconds:0} s: {pings} pings ({pings / window.TotalSeconds / connections:0.00} per connection per second), {cpuUsed.TotalMilliseconds:0} ms of process CPU, {perPing:0} µs CPU per ping. ");
        return text + string.Create(CultureInfo.InvariantCulture,
            $"At the default interval (2 min, or half of a shorter wait_timeout) that is {defaultPerHour:0} pings per idle connection per hour, about {defaultPerHour * connections * perPing / 1000:0} ms of CPU per hour for {connections} idle connections, and {defaultPerHour * connections * 2 * 40 / 1024:0} KiB per hour on the wire (a COM_PING and its OK are about 40 bytes with headers, each way). The housekeeping timer runs every quarter of the interval and pings only connections idle a full interval.");
    }
}

/// <summary>The server build/bench.sh started.</summary>
internal sealed class Server
{
    private readonly string _host = Env("NHK_TEST_MYSQL_HOST");
    private readonly int _port = int.Parse(Env("NHK_TEST_MYSQL_PORT"), CultureInfo.InvariantCulture);
    private readonly string _user = Env("NHK_TEST_MYSQL_USER");
    private readonly string _password = Env("NHK_TEST_MYSQL_PASSWORD");
    private readonly string _database = Env("NHK_TEST_MYSQL_DATABASE");

    public Server()
    {
        using var c = new MySqlConnector.MySqlConnection(ConnectionString(MySqlDriver.MySqlConnector) + ";Pooling=false");
        c.Open();
        Version = c.ServerVersion;
    }

    public string Version { get; }

    public string ConnectionString(MySqlDriver driver) =>
        $"Server={_host};Port={_port};User ID={_user};Password={_password};Database={_database};{(driver == MySqlDriver.MySqlData ? "SslMode=Disabled" : "SslMode=None")}";

    public void SetWaitTimeout(int seconds)
    {
        using var c = new MySqlConnector.MySqlConnection(ConnectionString(MySqlDriver.MySqlConnector) + ";Pooling=false");
        c.Open();
        using var command = c.CreateCommand();
        command.CommandText = $"SET GLOBAL wait_timeout = {seconds}";
        command.ExecuteNonQuery();
    }

    public static void Restart()
    {
        using var process = Process.Start(new ProcessStartInfo("bash", $"\"{Env("NHK_TEST_SERVER_CONTROL")}\" restart") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true })!;
        process.StandardOutput.ReadToEnd();
        process.WaitForExit(60_000);
    }

    private static string Env(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : throw new InvalidOperationException($"{name} is not set: run build/bench.sh.");
}
