using System;
using System.Collections.Generic;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Threading;

namespace NHKeepAlive.Benchmarks;

/// <summary>
/// Checkout + SELECT 1 + return, at 1, 8 and 32 callers, for NHKeepAlive (with its options on and off)
/// and the stock pools of both drivers, measured in one run on one server, the cells of each driver
/// interleaved; the cost of one socket poll; then the first query after an idle past wait_timeout and
/// after a restart; then the keepalive's CPU per ping net of the idle process. Writes a Markdown report.
/// </summary>
internal static class Program
{
    private static readonly int[] s_callers = [1, 8, 32];

    public static int Main(string[] args)
    {
        var report = args.Length > 0 ? args[0] : Path.Combine("docs", "benchmarks.md");
        var root = args.Length > 1 ? args[1] : Directory.GetCurrentDirectory();
        var seconds = double.Parse(Environment.GetEnvironmentVariable("NHK_BENCH_SECONDS") ?? "2.5", CultureInfo.InvariantCulture);
        var rounds = int.Parse(Environment.GetEnvironmentVariable("NHK_BENCH_ROUNDS") ?? "5", CultureInfo.InvariantCulture);
        // NHK_BENCH_ONLY=throughput,poll,first,keepalive,tenants,failover measures only those sections, into a
        // side file (the report in docs/ is written by full runs only). NHK_BENCH_FAILOVER=1 adds the
        // failover table (a Galera cluster, about 4 minutes) to a full run; without it the table of the
        // last run that measured it is kept.
        var only = (Environment.GetEnvironmentVariable("NHK_BENCH_ONLY") ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        bool Want(string section) => only.Length == 0 || only.Contains(section, StringComparer.OrdinalIgnoreCase);
        var failover = only.Length == 0 ? Environment.GetEnvironmentVariable("NHK_BENCH_FAILOVER") == "1" : Want("failover");
        var previousFailover = Failover.Previous(report);
        if (only.Length > 0)
            report = Path.Combine(Path.GetTempPath(), "nhk-bench-partial.md");
        var total = Stopwatch.StartNew();
        var server = new Server();
        server.SetMaxConnections(500); // every configuration of one driver stays open while its cells interleave
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} by `build/bench.sh` on {Environment.ProcessorCount} cores (a shared machine: other jobs ran at times, so single figures are noisy) against MariaDB {server.Version} on loopback. Work per operation: check a connection out, `SELECT 1`, give it back (the dirty workload runs `SET @x=1` first, as its own command). {seconds:0.#} s per cell, measured in {rounds} slices that take turns with the other configurations of the same driver (so that a change in how busy the machine is falls on every configuration alike), each slice after a short warm-up. CPU is the benchmark process's CPU time per operation (client side). Numbers swing with how busy the machine is; every ratio comes from cells of the same run.");
        md.AppendLine();

        foreach (var driver in new[] { MySqlDriver.MySqlData, MySqlDriver.MySqlConnector })
        {
            if (Want("throughput"))
                ThroughputSection(server, driver, seconds, rounds, md);
        }

        if (Want("poll"))
            PollSection(server, md);
        if (Want("first"))
            FirstQuerySection(server, md);
        if (Want("keepalive"))
        {
            server.SetMaxConnections(500); // a restart forgets it
            Console.WriteLine("== keepalive cost");
            md.AppendLine("### What the keepalive costs");
            md.AppendLine();
            md.AppendLine(KeepAliveCost.Measure(server));
        }

        if (Want("tenants"))
        {
            var tenants = int.Parse(Environment.GetEnvironmentVariable("NHK_BENCH_TENANTS") ?? "1000", CultureInfo.InvariantCulture);
            Console.WriteLine($"== tenants ({tenants} databases)");
            md.Append(Tenants.Measure(server, tenants));
        }

        if (failover)
        {
            Console.WriteLine("== failover on a Galera cluster");
            md.Append(Failover.Measure(root));
        }
        else if (previousFailover is not null)
        {
            md.Append(previousFailover);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(report))!);
        File.WriteAllText(report, md.ToString());
        Console.WriteLine($"report: {report} ({total.Elapsed.TotalSeconds:0} s)");
        return 0;
    }

    private static void PollSection(Server server, StringBuilder md)
    {
        Console.WriteLine("== cost of one socket poll");
        md.AppendLine("### The cost of one socket check");
        md.AppendLine();
        md.AppendLine("`Socket.Poll(0, SelectMode.SelectRead)` in a tight loop on the socket under a live pooled connection (found by walking the driver's objects as `SocketAborter` does); the poll consumes nothing.");
        md.AppendLine();
        md.AppendLine("| driver | polls | ns per poll | socket readable |");
        md.AppendLine("|---|---:|---:|---|");
        foreach (var driver in new[] { MySqlDriver.MySqlData, MySqlDriver.MySqlConnector })
        {
            var poll = PollCost.Measure(server, driver);
            Console.WriteLine($"  {Config.DriverName(driver),-16} {poll}");
            md.AppendLine(CultureInfo.InvariantCulture, $"| {Config.DriverName(driver)} | {poll} |");
        }

        md.AppendLine();
    }

    private static void FirstQuerySection(Server server, StringBuilder md)
    {
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
    }

    private static void ThroughputSection(Server server, MySqlDriver driver, double seconds, int rounds, StringBuilder md)
    {
        var name = Config.DriverName(driver);
        var title = driver == MySqlDriver.MySqlData ? "MySql.Data 26.10.0" : "MySqlConnector 2.6.2";
        Console.WriteLine($"== {title}");
        var stock = driver == MySqlDriver.MySqlData ? Config.MySqlDataStock(server) : Config.ConnectorStock(server, reset: true);
        var noReset = driver == MySqlDriver.MySqlConnector ? Config.ConnectorStock(server, reset: false) : null;
        var keepAlive = Config.KeepAlive(server, driver);
        var noSocketCheck = Config.KeepAlive(server, driver, o => o.SocketCheck = false, "NHKeepAlive, SocketCheck off");
        var never = Config.KeepAlive(server, driver, o => o.SessionReset = SessionResetPolicy.Never, "NHKeepAlive, SessionReset=Never");
        var always = Config.KeepAlive(server, driver, o => o.SessionReset = SessionResetPolicy.Always, "NHKeepAlive, SessionReset=Always");
        var held = Config.Held(server, driver);

        // The dirty workload gets a pool of its own: a reset is I/O that MySqlConnector does asynchronously
        // only, after which .NET serves that socket from its epoll thread for good (every reply then costs a
        // thread-pool dispatch, about 6 µs of CPU here); sharing the pool would charge that to the clean cells.
        var keepAliveDirty = Config.KeepAlive(server, driver);
        var configs = new[] { stock, noReset, keepAlive, noSocketCheck, never, always, held, keepAliveDirty }.OfType<Config>().ToList();

        var clean = new List<Cell> { new(stock, false), };
        if (noReset is not null)
            clean.Add(new Cell(noReset, false));
        clean.AddRange([new Cell(keepAlive, false), new Cell(noSocketCheck, false), new Cell(never, false), new Cell(held, false)]);
        var dirty = new List<Cell> { new(keepAliveDirty, true), new(always, true) };
        var cells = clean.Concat(dirty).ToList();
        // Measured in this order (rotating each round), so that each ratio's two cells run next to each other.
        var order = cells.OrderBy(c => c.Config == noSocketCheck ? cells.IndexOf(clean.Single(k => k.Config == keepAlive)) - 0.5 : cells.IndexOf(c)).ToList();

        var results = Throughput.MeasureInterleaved(order, s_callers, TimeSpan.FromSeconds(seconds), rounds);
        var allocations = clean.Select(c => (c.Name, Bytes: Allocation.Measure(c.Config))).ToList();
        configs.ForEach(c => c.Dispose());
        foreach (var cell in cells)
        {
            foreach (var callers in s_callers)
            {
                var r = results[(cell, callers)];
                Console.WriteLine($"  {cell.Name,-62} {callers,2} callers: {r.OpsPerSecond,9:N0} ops/s, {r.CpuMicrosPerOp,6:0.0} µs CPU/op, {r.Errors} errors");
            }
        }

        if (Throughput.TakeFirstError() is { } error)
            Console.WriteLine($"  first error: {error}");

        string Row(Cell cell) =>
            $"| {cell.Name} | {string.Join(" | ", s_callers.Select(c => string.Create(CultureInfo.InvariantCulture, $"{results[(cell, c)].OpsPerSecond:N0} ({results[(cell, c)].CpuMicrosPerOp:0} µs){(results[(cell, c)].Errors > 0 ? $", {results[(cell, c)].Errors} errors" : string.Empty)}")))} |";
        var header = "| configuration | " + string.Join(" | ", s_callers.Select(c => $"{c} caller{(c > 1 ? "s" : string.Empty)}")) + " |";
        var rule = "|---|" + string.Concat(s_callers.Select(_ => "---:|"));

        md.AppendLine(CultureInfo.InvariantCulture, $"### {title}: throughput (ops/s) and client CPU per operation");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"NHKeepAlive's rows without a note use its defaults (`SocketCheck` on, `SessionReset=Auto`).");
        md.AppendLine();
        md.AppendLine(header);
        md.AppendLine(rule);
        clean.ForEach(c => md.AppendLine(Row(c)));
        md.AppendLine();
        md.AppendLine("The dirty workload: every caller runs `SET @x=1` before its `SELECT 1`, so every connection comes back with changed session state. Both policies reset every return (`Auto` sees the `SET`): one COM_RESET_CONNECTION on MySqlConnector, COM_CHANGE_USER (a re-authentication) on MySql.Data.");
        md.AppendLine();
        md.AppendLine(header);
        md.AppendLine(rule);
        dirty.ForEach(c => md.AppendLine(Row(c)));
        md.AppendLine();

        md.AppendLine("Bytes allocated on the calling thread, one caller, averaged over 2,000 operations after a warm-up: a checkout and its return with nothing run on the connection, and one `SELECT 1` command (created, run, disposed) on a connection already taken.");
        md.AppendLine();
        md.AppendLine("| configuration | bytes per checkout + return | bytes per command |");
        md.AppendLine("|---|---:|---:|");
        Console.WriteLine("  allocations (bytes per checkout + return, per command):");
        foreach (var (cellName, bytes) in allocations)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {cellName} | {bytes.PerCheckout:N0} | {bytes.PerCommand:N0} |");
            Console.WriteLine($"    {cellName,-62} {bytes.PerCheckout,8:N0} {bytes.PerCommand,8:N0}");
        }

        md.AppendLine();

        var ka = clean.Single(c => c.Config == keepAlive);
        var ratios = new List<(string Label, Cell Over, Cell Under, double Min, bool OnlyOneCaller, string Target)>
        {
            ($"NHKeepAlive (defaults) / {stock.Name}", ka, clean[0], 1.5, false, "≥ 1.5×"),
        };
        if (noReset is not null)
            ratios.Add(($"NHKeepAlive (defaults) / {noReset.Name}", ka, clean[1], 0.9, false, "≥ 0.9×"));
        ratios.AddRange(
        [
            ("NHKeepAlive (defaults) / one held connection per caller (floor)", ka, clean.Single(c => c.Config == held), 0.85, true, "≥ 0.85× at 1 caller"),
            ("socket check: SocketCheck on / off", ka, clean.Single(c => c.Config == noSocketCheck), 0.97, false, "≥ 0.97×"),
            ("session hygiene, clean path: SessionReset=Auto / Never", ka, clean.Single(c => c.Config == never), 0.9, false, "≥ 0.9×"),
            ("dirty workload: SessionReset=Auto / Always", dirty[0], dirty[1], 0, false, "none (both reset every return)"),
        ]);
        md.AppendLine("Each ratio is the median over the rounds of the ratio of the two configurations' slices in the same round, with the lowest and highest round in brackets: the spread shows how much of a difference this machine can tell apart.");
        md.AppendLine();
        md.AppendLine("| ratio | " + string.Join(" | ", s_callers.Select(c => $"{c}")) + " | target | met |");
        md.AppendLine("|---|" + string.Concat(s_callers.Select(_ => "---:|")) + "---|---|");
        Console.WriteLine($"  ratios ({name}):");
        foreach (var (label, over, under, min, onlyOne, target) in ratios)
        {
            var values = s_callers.Select(c => (Callers: c, Ratio: results[(over, c)].RatioTo(results[(under, c)]))).ToList();
            var missed = values.Where(v => (!onlyOne || v.Callers == 1) && v.Ratio.Median < min).Select(v => v.Callers.ToString(CultureInfo.InvariantCulture)).ToList();
            var met = min <= 0 ? "—" : missed.Count == 0 ? "yes" : $"**no** ({string.Join(", ", missed)} caller{(missed.Count > 1 || missed[0] != "1" ? "s" : string.Empty)})";
            var cellsText = string.Join(" | ", values.Select(v => string.Create(CultureInfo.InvariantCulture, $"**{v.Ratio.Median:0.00}×** ({v.Ratio.Low:0.00}–{v.Ratio.High:0.00})")));
            md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {cellsText} | {target} | {met} |");
            Console.WriteLine($"    {label,-70} {cellsText.Replace(" | ", "  ", StringComparison.Ordinal).Replace("**", string.Empty, StringComparison.Ordinal)}  target {target}: {met.Replace("**", string.Empty, StringComparison.Ordinal)}");
        }

        md.AppendLine();
    }
}

/// <summary>A cell's throughput over all its slices, and each slice's (in round order).</summary>
internal sealed record Result(double OpsPerSecond, double CpuMicrosPerOp, long Errors, IReadOnlyList<double> SliceOpsPerSecond)
{
    /// <summary>
    /// This cell's throughput over <paramref name="other"/>'s: the median, over the rounds, of the ratio of
    /// their slices of the same round (which ran close in time), and the lowest and highest of those.
    /// </summary>
    public (double Median, double Low, double High) RatioTo(Result other)
    {
        var ratios = SliceOpsPerSecond.Zip(other.SliceOpsPerSecond, (a, b) => a / Math.Max(1e-9, b)).OrderBy(r => r).ToList();
        var median = ratios.Count % 2 == 1 ? ratios[ratios.Count / 2] : (ratios[(ratios.Count / 2) - 1] + ratios[ratios.Count / 2]) / 2;
        return (median, ratios[0], ratios[^1]);
    }
}

/// <summary>A configuration and a workload: clean (SELECT 1) or dirty (SET @x=1, then SELECT 1).</summary>
internal sealed record Cell(Config Config, bool Dirty)
{
    public string Name => Dirty ? $"{Config.Name}, dirty workload" : Config.Name;
}

/// <summary>One way of getting a connection for an operation.</summary>
internal sealed class Config : IDisposable
{
    private readonly Func<int, DbConnection> _take;
    private readonly Action<int, DbConnection, Exception?> _give;
    private readonly Action _dispose;

    private Config(string name, string kind, Func<int, DbConnection> take, Action<int, DbConnection, Exception?> give, Action dispose)
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

    public DbConnection Take(int caller) => _take(caller);

    /// <summary>Gives the connection back; <paramref name="failure"/> is what went wrong on it, if anything.</summary>
    public void Give(int caller, DbConnection connection, Exception? failure = null) => _give(caller, connection, failure);

    public void Dispose() => _dispose();

    public static string DriverName(MySqlDriver driver) => driver == MySqlDriver.MySqlData ? "MySql.Data" : "MySqlConnector";

    public static Config MySqlDataStock(Server server)
    {
        var cs = server.ConnectionString(MySqlDriver.MySqlData);
        return new Config("MySql.Data pool (default)", "stock",
            _ => { var c = new MySql.Data.MySqlClient.MySqlConnection(cs); c.Open(); return c; },
            (_, c, _) => c.Dispose(),
            MySql.Data.MySqlClient.MySqlConnection.ClearAllPools);
    }

    public static Config ConnectorStock(Server server, bool reset)
    {
        var cs = server.ConnectionString(MySqlDriver.MySqlConnector) + (reset ? string.Empty : ";ConnectionReset=false");
        return new Config(reset ? "MySqlConnector pool (default)" : "MySqlConnector pool, ConnectionReset=false", reset ? "stock" : "noreset",
            _ => { var c = new MySqlConnector.MySqlConnection(cs); c.Open(); return c; },
            (_, c, _) => c.Dispose(),
            MySqlConnector.MySqlConnection.ClearAllPools);
    }

    public static Config KeepAlive(Server server, MySqlDriver driver, Action<KeepAliveOptions>? configure = null, string? name = null)
    {
        var options = new KeepAliveOptions { ConnectionString = server.ConnectionString(driver), Driver = driver };
        configure?.Invoke(options);
        var pool = new KeepAlivePool(options);
        return new Config(name ?? $"NHKeepAlive on {DriverName(driver)}", "keepalive", _ => pool.Rent(), (_, c, failure) => pool.Return(c, failure), pool.Dispose);
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
            (caller, c, failure) =>
            {
                if (failure is null)
                    return;
                lock (gate)
                    held.Remove(caller); // reopened at the caller's next operation
                c.Dispose();
            },
            () =>
            {
                foreach (var c in held.Values)
                    c.Dispose();
            });
    }
}

internal static class Throughput
{
    private static readonly TimeSpan s_firstWarmUp = TimeSpan.FromSeconds(0.6);
    private static readonly TimeSpan s_warmUp = TimeSpan.FromSeconds(0.2);
    private static string? s_firstError;

    /// <summary>The first error any cell met (printed with the cell), then cleared.</summary>
    public static string? TakeFirstError() => Interlocked.Exchange(ref s_firstError, null);

    /// <summary>
    /// Measures every cell at each number of callers, <paramref name="perCell"/> in all, split into
    /// <paramref name="rounds"/> slices that take turns (the order rotates each round).
    /// </summary>
    public static Dictionary<(Cell, int), Result> MeasureInterleaved(IReadOnlyList<Cell> cells, int[] callerCounts, TimeSpan perCell, int rounds)
    {
        var results = new Dictionary<(Cell, int), Result>();
        foreach (var callers in callerCounts)
        {
            var sums = cells.ToDictionary(c => c, _ => (Ops: 0L, Cpu: TimeSpan.Zero, Elapsed: TimeSpan.Zero, Errors: 0L));
            var slices = cells.ToDictionary(c => c, _ => new double[rounds]);
            for (var round = 0; round < rounds; round++)
            {
                for (var i = 0; i < cells.Count; i++)
                {
                    var cell = cells[(i + round) % cells.Count];
                    var (ops, cpu, elapsed, errors) = Slice(cell, callers, perCell / rounds, round == 0 ? s_firstWarmUp : s_warmUp);
                    var sum = sums[cell];
                    sums[cell] = (sum.Ops + ops, sum.Cpu + cpu, sum.Elapsed + elapsed, sum.Errors + errors);
                    slices[cell][round] = ops / elapsed.TotalSeconds;
                }
            }

            foreach (var (cell, sum) in sums)
                results[(cell, callers)] = new Result(sum.Ops / sum.Elapsed.TotalSeconds, sum.Ops == 0 ? 0 : sum.Cpu.TotalMilliseconds * 1000 / sum.Ops, sum.Errors, slices[cell]);
        }

        return results;
    }

    private static (long Ops, TimeSpan Cpu, TimeSpan Elapsed, long Errors) Slice(Cell cell, int callers, TimeSpan duration, TimeSpan warmUp)
    {
        long ops = 0;
        long errors = 0;
        var measuring = false;
        var stop = false;
        var config = cell.Config;
        using var started = new CountdownEvent(callers);
        var threads = Enumerable.Range(0, callers).Select(caller => new Thread(() =>
        {
            started.Signal();
            while (!Volatile.Read(ref stop))
            {
                DbConnection? c = null;
                try
                {
                    c = config.Take(caller);
                    if (cell.Dirty)
                    {
                        using var set = c.CreateCommand();
                        set.CommandText = "SET @x=1";
                        set.ExecuteNonQuery();
                    }

                    using (var command = c.CreateCommand())
                    {
                        command.CommandText = "SELECT 1";
                        command.ExecuteScalar();
                    }

                    config.Give(caller, c, null);
                    if (Volatile.Read(ref measuring))
                        Interlocked.Increment(ref ops);
                }
                catch (Exception e)
                {
                    if (c is not null)
                        config.Give(caller, c, e); // never leak a connection: a leak would starve every later cell
                    if (Volatile.Read(ref measuring))
                        Interlocked.Increment(ref errors);
                    Interlocked.CompareExchange(ref s_firstError, $"{e.GetType().Name}: {e.Message}", null);
                }
            }
        }) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        started.Wait();
        Thread.Sleep(warmUp); // connections opened or revalidated, JIT done
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref measuring, true);
        Thread.Sleep(duration);
        Volatile.Write(ref measuring, false);
        var elapsed = clock.Elapsed;
        var cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        Volatile.Write(ref stop, true);
        threads.ForEach(t => t.Join(TimeSpan.FromSeconds(30)));
        return (Interlocked.Read(ref ops), cpuUsed, elapsed, Interlocked.Read(ref errors));
    }
}

/// <summary>Bytes a checkout and a command allocate on the calling thread, for the allocation table beside the throughput.</summary>
internal static class Allocation
{
    private const int Operations = 2_000;

    public static (long PerCheckout, long PerCommand) Measure(Config config)
    {
        for (var i = 0; i < 200; i++)
            Once(config, command: true); // warm: JIT, the connection open
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Operations; i++)
            Once(config, command: false);
        var checkout = (GC.GetAllocatedBytesForCurrentThread() - before) / Operations;

        var held = config.Take(0);
        try
        {
            before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < Operations; i++)
                Run(held);
            return (checkout, (GC.GetAllocatedBytesForCurrentThread() - before) / Operations);
        }
        finally
        {
            config.Give(0, held);
        }
    }

    private static void Once(Config config, bool command)
    {
        var connection = config.Take(0);
        if (command)
            Run(connection);
        config.Give(0, connection);
    }

    private static void Run(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT 1";
        command.ExecuteScalar();
    }
}

/// <summary>The cost of the socket check: a tight loop of non-blocking polls on a live pooled connection's socket.</summary>
internal static class PollCost
{
    private const int Polls = 1_000_000;

    public static string Measure(Server server, MySqlDriver driver)
    {
        using var pool = new KeepAlivePool(new KeepAliveOptions { ConnectionString = server.ConnectionString(driver), Driver = driver });
        var connection = pool.Rent();
        try
        {
            var socket = NHKeepAlive.Drivers.SocketAborter.FindSocket(((KeepAliveConnection)connection).InnerConnection); // the walk the pool itself makes, on the driver's connection
            if (socket is null)
                return "no socket found under the connection | — | —";
            var readable = false;
            for (var i = 0; i < 10_000; i++)
                readable |= socket.Poll(0, SelectMode.SelectRead); // warm-up
            var best = double.MaxValue;
            for (var run = 0; run < 3; run++)
            {
                var watch = Stopwatch.StartNew();
                for (var i = 0; i < Polls; i++)
                    readable |= socket.Poll(0, SelectMode.SelectRead);
                best = Math.Min(best, watch.Elapsed.TotalMilliseconds * 1_000_000 / Polls);
            }

            return string.Create(CultureInfo.InvariantCulture, $"3 × {Polls:N0} | {best:0} (best of 3) | {(readable ? "**yes** (unexpected on a live idle connection)" : "no")}");
        }
        finally
        {
            pool.Return(connection);
        }
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
        $"Server={_host};Port={_port};User ID={_user};Password={_password};Database={_database};Allow User Variables=true;{(driver == MySqlDriver.MySqlData ? "SslMode=Disabled" : "SslMode=None")}";

    public void SetWaitTimeout(int seconds)
    {
        using var c = new MySqlConnector.MySqlConnection(ConnectionString(MySqlDriver.MySqlConnector) + ";Pooling=false");
        c.Open();
        using var command = c.CreateCommand();
        command.CommandText = $"SET GLOBAL wait_timeout = {seconds}";
        command.ExecuteNonQuery();
    }

    /// <summary>A connection outside any pool, for what the benchmark does to the server.</summary>
    public MySqlConnector.MySqlConnection Admin()
    {
        var c = new MySqlConnector.MySqlConnection(ConnectionString(MySqlDriver.MySqlConnector) + ";Pooling=false");
        c.Open();
        return c;
    }

    /// <summary>The benchmark user's connections on the server, other than the one asking.</summary>
    public long UserConnections()
    {
        using var c = Admin();
        using var command = c.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{_user}' AND ID <> CONNECTION_ID()";
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    public void SetMaxConnections(int connections)
    {
        using var c = new MySqlConnector.MySqlConnection(ConnectionString(MySqlDriver.MySqlConnector) + ";Pooling=false");
        c.Open();
        using var command = c.CreateCommand();
        command.CommandText = $"SET GLOBAL max_connections = {connections}";
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
