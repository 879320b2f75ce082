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
/// The keepalive's CPU per ping net of the idle process, per driver, and where it goes: the
/// housekeeping thread's own CPU (from the kernel's per-thread accounting), the other threads, and
/// floors measured in the same process (a bare driver Ping() on the same number of idle connections,
/// the deadline timer each ping arms).
/// </summary>
internal static class KeepAliveCost
{
    private const int Connections = 100;
    private static readonly TimeSpan s_interval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_window = TimeSpan.FromSeconds(10);
    private static readonly JitListener s_jit = new();

    private sealed record Window(TimeSpan ProcessCpu, long Pings, Dictionary<string, double> ThreadMicros, int Jitted, string TopJitted);

    public static string Measure(Server server)
    {
        var md = new StringBuilder();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{Connections} idle connections, per driver: the keepalive pinging every {s_interval.TotalSeconds:0} s, measured over four {s_window.TotalSeconds:0} s windows after {12} s of pinging (the figure is the median of the last three; the first still carries the JIT's tier-up of the keepalive path, a start-up cost, and is the only one with a JIT event listener running, whose own work would otherwise count), then {s_window.TotalSeconds:0} s with the keepalive off (the baseline: the same pool, idle). The CPU is the whole process's (user + system, so the kernel's share of each socket send and receive counts); the per-thread split comes from the kernel's per-thread run time (`/proc/self/task/*/schedstat`). Target: ≤ 30 µs per ping net of the baseline."));
        md.AppendLine();
        md.AppendLine("| | MySqlConnector | MySql.Data |");
        md.AppendLine("|---|---:|---:|");
        var results = new Dictionary<MySqlDriver, (double Net, double Tiering, double Gross, double Housekeeper, double Others, string TopOthers, double BarePing, double BareWallMicros, long Pings, TimeSpan Baseline, TimeSpan On)>();
        var pooledPings = new Dictionary<MySqlDriver, (double Cpu, double Wall, double Process)>();
        var bareProcessCpu = new Dictionary<MySqlDriver, double>();
        s_jit.Start(); // the listener's own start-up happens before any window
        Thread.Sleep(500);
        s_jit.Stop();

        // The measuring code itself (reading every thread's run time) is brought to its last JIT tier
        // first, so that its tier-up does not fall in a window.
        for (var i = 0; i < 200; i++)
        {
            _ = PerName(ThreadRunTimes(), ThreadRunTimes()).Count;
            _ = Process.GetCurrentProcess().TotalProcessorTime;
        }

        Thread.Sleep(1000);
        var firstWindows = new Dictionary<MySqlDriver, (double Net, double Jit)>();
        foreach (var driver in new[] { MySqlDriver.MySqlConnector, MySqlDriver.MySqlData })
        {
            // The keepalive first (its JIT warm-up falls in its first window), then the baseline, idle
            // with the keepalive off, once the driver's code is warm.
            // The first window counts what the JIT still compiles (its listener runs in that window only:
            // a listener's own work would fall in the figure); the figure is the median of the next three.
            var windows = Idle(server, driver, s_interval, 4);
            var off = Idle(server, driver, TimeSpan.Zero);
            var on = windows.Skip(1).OrderBy(w => (double)w.ProcessCpu.Ticks / Math.Max(1, w.Pings)).ElementAt(1);
            var first = windows[0];
            firstWindows[driver] = ((first.ProcessCpu - off.ProcessCpu).TotalMilliseconds * 1000 / Math.Max(1, first.Pings), first.ThreadMicros.Where(t => t.Key.StartsWith(".NET Tiered", StringComparison.Ordinal)).Sum(t => t.Value) / Math.Max(1, first.Pings));
            var pings = Math.Max(1, on.Pings);
            var net = (on.ProcessCpu - off.ProcessCpu).TotalMilliseconds * 1000 / pings;

            // The JIT's tiered compilation thread still works through the keepalive's windows here (a
            // start-up cost, not a per-ping one: with DOTNET_TieredCompilation=0 that thread is idle and the
            // net figure is what is left below); shown on its own and left out of the figure judged.
            var tiering = Math.Max(0, on.ThreadMicros.Where(t => t.Key.StartsWith(".NET Tiered", StringComparison.Ordinal)).Sum(t => t.Value)
                - off.ThreadMicros.Where(t => t.Key.StartsWith(".NET Tiered", StringComparison.Ordinal)).Sum(t => t.Value)) / pings;
            var gross = on.ProcessCpu.TotalMilliseconds * 1000 / pings;
            var housekeeper = on.ThreadMicros.Where(t => t.Key.StartsWith("NHKeepAlive", StringComparison.Ordinal)).Sum(t => t.Value) / pings;
            var deltas = on.ThreadMicros.Where(t => !t.Key.StartsWith("NHKeepAlive", StringComparison.Ordinal))
                .Select(t => (t.Key, Value: t.Value - off.ThreadMicros.GetValueOrDefault(t.Key)))
                .OrderByDescending(t => t.Value).ToList();
            var others = deltas.Sum(t => t.Value) / pings;
            var top = string.Join(", ", deltas.Take(3).Where(t => t.Value > 0).Select(t => string.Create(CultureInfo.InvariantCulture, $"`{t.Key}` {t.Value / pings:0.0}")));
            var (bare, bareWall, bareProcess) = BarePing(server, driver, pooled: false);
            var (onPooled, onPooledWall, onPooledProcess) = BarePing(server, driver, pooled: true);
            results[driver] = (net, tiering, gross, housekeeper, others, top, bare, bareWall, on.Pings, off.ProcessCpu, on.ProcessCpu);
            pooledPings[driver] = (onPooled, onPooledWall, onPooledProcess);
            bareProcessCpu[driver] = bareProcess;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {Config.DriverName(driver),-15} off {off.ProcessCpu.TotalMilliseconds:0} ms, on {on.ProcessCpu.TotalMilliseconds:0} ms, {on.Pings} pings: net {net:0.0} µs/ping (gross {gross:0}; JIT tiering thread {tiering:0.0}, without it {net - tiering:0.0}); housekeeping thread {housekeeper:0.0}, other threads net {others:0.0} ({top}); bare Ping() {bare:0.0} µs CPU, {bareWall:0.0} µs wall, {bareProcess:0.0} µs process CPU; on the pool's connections {onPooled:0.0} µs CPU, {onPooledWall:0.0} µs wall, {onPooledProcess:0.0} µs process CPU; first window: net {firstWindows[driver].Net:0.0} µs/ping, tiered JIT thread {firstWindows[driver].Jit:0.0}, JIT compiled {first.Jitted} methods ({first.TopJitted})"));
        }

        var timer = TimerCost();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  deadline timer + shutdown registration, armed and disposed: {timer:0.00} µs"));
        string Both(Func<MySqlDriver, string> f) => $"{f(MySqlDriver.MySqlConnector)} | {f(MySqlDriver.MySqlData)}";
        string F(double v) => v.ToString("0.0", CultureInfo.InvariantCulture);
        md.AppendLine(CultureInfo.InvariantCulture, $"| keepalive pings in the window | {Both(d => results[d].Pings.ToString("N0", CultureInfo.InvariantCulture))} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| process CPU, keepalive off / on | {Both(d => string.Create(CultureInfo.InvariantCulture, $"{results[d].Baseline.TotalMilliseconds:0} / {results[d].On.TotalMilliseconds:0} ms"))} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| CPU per ping net of the baseline | {Both(d => F(results[d].Net) + " µs")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| of which the JIT's tiered compilation thread, still tiering up (a start-up cost) | {Both(d => F(results[d].Tiering) + " µs")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| **CPU per ping net of the baseline, without the JIT's tier-up** (target ≤ 30 µs) | {Both(d => $"**{F(results[d].Net - results[d].Tiering)} µs** ({(results[d].Net - results[d].Tiering <= 30 ? "met" : "not met")})")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| gross (baseline included) | {Both(d => F(results[d].Gross) + " µs")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| the first window, net (of which the JIT's tiered compilation thread) | {Both(d => $"{F(firstWindows[d].Net)} µs ({F(firstWindows[d].Jit)} µs)")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| of which on the housekeeping thread (the ping, its deadline timer, the pool's bookkeeping, the kernel's send and receive) | {Both(d => F(results[d].Housekeeper) + " µs")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| of which on other threads, net of the baseline (largest three) | {Both(d => $"{F(results[d].Others)} µs ({(results[d].TopOthers.Length == 0 ? "—" : results[d].TopOthers)})")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| floor: the driver's own `Ping()` on {Connections} idle connections of its own, in bursts as the keepalive does: CPU of the calling thread / of the whole process (wall time) | {Both(d => $"{F(results[d].BarePing)} / {F(bareProcessCpu[d])} µs ({F(results[d].BareWallMicros)} µs wall)")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| the same `Ping()` called directly on {Connections} connections the pool opened (no pool code on the path): calling thread / whole process (wall) | {Both(d => $"{F(pooledPings[d].Cpu)} / {F(pooledPings[d].Process)} µs ({F(pooledPings[d].Wall)} µs wall)")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| floor: one deadline timer and shutdown registration armed and disposed (each ping has one) | {F(timer)} µs | same |");
        md.AppendLine();
        var c = results[MySqlDriver.MySqlConnector];
        var d = results[MySqlDriver.MySqlData];
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Reading: the keepalive writes COM_PING on the socket itself where the protocol is plain (no TLS, no compression), in batches of up to 32, and reads each reply with one poll and one read; the housekeeping thread spends {c.Housekeeper:0} µs (MySqlConnector) and {d.Housekeeper:0} µs (MySql.Data) per ping, against {pooledPings[MySqlDriver.MySqlConnector].Cpu:0} and {pooledPings[MySqlDriver.MySqlData].Cpu:0} µs for the driver's own `Ping()` called directly on the pool's connections. The rest runs on other threads and is the runtime's, not the pool's: once .NET has used a socket asynchronously (MySqlConnector's reset, MySql.Data's own I/O, any async caller), it keeps it registered with its epoll engine, and every reply that arrives wakes the `.NET Sockets` thread, which hands the event to a thread-pool worker whether or not anyone waits for it; that is why the driver's own `Ping()` on such sockets costs {pooledPings[MySqlDriver.MySqlData].Process:0} µs of process CPU on MySql.Data against {pooledPings[MySqlDriver.MySqlData].Cpu:0} µs on its calling thread. Batching lets one worker take several replies. At the default interval (2 min, or half of a shorter wait_timeout) a ping per idle connection every 2 minutes is 30 an hour: {30 * Connections * c.Net / 1000:0} ms of CPU per hour for {Connections} idle connections on MySqlConnector at the net figure above, and {30 * Connections * 2 * 40 / 1024:0} KiB per hour on the wire (a COM_PING and its OK are about 40 bytes with headers, each way)."));
        return md.ToString();
    }

    /// <summary>Process CPU, keepalive pings and each thread's run time over one window of idling.</summary>
    private static Window Idle(Server server, MySqlDriver driver, TimeSpan interval) => Idle(server, driver, interval, 1)[0];

    private static List<Window> Idle(Server server, MySqlDriver driver, TimeSpan interval, int windows)
    {
        using var pool = new KeepAlivePool(new KeepAliveOptions
        {
            ConnectionString = server.ConnectionString(driver),
            Driver = driver,
            MaxPoolSize = Connections,
            KeepAliveInterval = interval,
            ValidationBypassWindow = TimeSpan.FromMilliseconds(200),
        });
        var taken = Enumerable.Range(0, Connections).Select(_ => pool.Rent()).ToList();
        taken.ForEach(c => pool.Return(c));
        // Pings run for a while before the window, so that their code has reached its final JIT tier
        // (the tiered compiler's work is a start-up cost, not a per-ping one).
        Thread.Sleep(TimeSpan.FromSeconds(interval > TimeSpan.Zero ? 12 : 2));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var pings = pool.GetStatistics().KeepAlivePings;
        var result = new List<Window>();
        for (var w = 0; w < windows; w++)
        {
            var threads = ThreadRunTimes();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var listen = w == 0 && windows > 1;
            if (listen)
                s_jit.Start();
            Thread.Sleep(s_window);
            var (jitted, topJitted) = listen ? s_jit.Stop() : (0, string.Empty);
            var cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpu;
            var perName = PerName(threads, ThreadRunTimes());
            var now = pool.GetStatistics().KeepAlivePings;
            result.Add(new Window(cpuUsed, now - pings, perName, jitted, topJitted));
            pings = now;
        }

        return result;
    }

    /// <summary>Microseconds of run time per thread name between two readings of <see cref="ThreadRunTimes"/>.</summary>
    private static Dictionary<string, double> PerName(Dictionary<int, (string Name, long Nanoseconds)> before, Dictionary<int, (string Name, long Nanoseconds)> after)
    {
        var perName = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (tid, (name, ns)) in after)
        {
            var start = before.TryGetValue(tid, out var b) ? b.Nanoseconds : 0;
            perName[name] = perName.GetValueOrDefault(name) + ((ns - start) / 1000.0);
        }

        return perName;
    }

    /// <summary>
    /// The driver's own Ping() on <see cref="Connections"/> idle connections opened without pooling, in
    /// ten bursts a second apart, as the keepalive pings them: CPU of this thread and wall time per ping.
    /// </summary>
    private static (double CpuMicros, double WallMicros, double ProcessMicros) BarePing(Server server, MySqlDriver driver, bool pooled)
    {
        var cs = server.ConnectionString(driver) + ";Pooling=false";
        using var pool = pooled ? new KeepAlivePool(new KeepAliveOptions { ConnectionString = server.ConnectionString(driver), Driver = driver, MaxPoolSize = Connections, KeepAliveInterval = TimeSpan.Zero }) : null;
        var connections = Enumerable.Range(0, Connections).Select(_ =>
        {
            if (pool is not null)
                return pool.Rent();
            DbConnection c = driver == MySqlDriver.MySqlData ? new MySql.Data.MySqlClient.MySqlConnection(cs) : new MySqlConnector.MySqlConnection(cs);
            c.Open();
            return c;
        }).ToList();
        try
        {
            var ping = driver == MySqlDriver.MySqlData
                ? (Func<DbConnection, bool>)(c => ((MySql.Data.MySqlClient.MySqlConnection)Driver(c)).Ping())
                : c => ((MySqlConnector.MySqlConnection)Driver(c)).Ping();
            connections.ForEach(c => ping(c)); // warm-up (JIT)
            long cpuNs = 0;
            var wall = TimeSpan.Zero;
            var processCpu = TimeSpan.Zero;
            const int bursts = 10;
            for (var burst = 0; burst < bursts; burst++)
            {
                Thread.Sleep(TimeSpan.FromSeconds(1));
                var process = Process.GetCurrentProcess().TotalProcessorTime;
                var cpu = CurrentThreadNanoseconds();
                var watch = Stopwatch.StartNew();
                foreach (var c in connections)
                {
                    if (!ping(c))
                        throw new InvalidOperationException("a bare ping failed");
                }

                wall += watch.Elapsed;
                cpuNs += CurrentThreadNanoseconds() - cpu;
                Thread.Sleep(20); // what the pings set off on other threads finishes
                processCpu += Process.GetCurrentProcess().TotalProcessorTime - process;
            }

            return (cpuNs / 1000.0 / (bursts * Connections), wall.TotalMilliseconds * 1000 / (bursts * Connections), processCpu.TotalMilliseconds * 1000 / (bursts * Connections));
        }
        finally
        {
            connections.ForEach(c =>
            {
                if (pool is not null)
                    pool.Return(c);
                else
                    c.Dispose();
            });
        }
    }

    /// <summary>The driver's own connection: a pool's handle's inner one, or the bare connection itself.</summary>
    private static DbConnection Driver(DbConnection connection) =>
        connection is KeepAliveConnection handle ? handle.InnerConnection : connection;

    /// <summary>What each ping's deadline costs: a one-shot timer and a cancellation registration, armed and disposed.</summary>
    private static double TimerCost()
    {
        const int count = 100_000;
        using var shutdown = new CancellationTokenSource();
        for (var i = 0; i < 1000; i++)
            Arm(shutdown.Token);
        var cpu = CurrentThreadNanoseconds();
        for (var i = 0; i < count; i++)
            Arm(shutdown.Token);
        return (CurrentThreadNanoseconds() - cpu) / 1000.0 / count;

        static void Arm(CancellationToken token)
        {
            using var timer = TimeProvider.System.CreateTimer(static _ => { }, null, TimeSpan.FromSeconds(3), Timeout.InfiniteTimeSpan);
            using var registration = token.Register(static () => { });
        }
    }

    /// <summary>The calling thread's run time in ns (the kernel's schedstat), or its CPU time where that is missing.</summary>
    private static long CurrentThreadNanoseconds()
    {
        try
        {
            return long.Parse(File.ReadAllText("/proc/thread-self/schedstat").Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Each thread of this process: its name (comm) and run time in ns.</summary>
    private static Dictionary<int, (string Name, long Nanoseconds)> ThreadRunTimes()
    {
        var result = new Dictionary<int, (string, long)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                var tid = int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture);
                var name = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                var ns = long.Parse(File.ReadAllText(Path.Combine(dir, "schedstat")).Split(' ')[0], CultureInfo.InvariantCulture);
                result[tid] = (name, ns);
            }
            catch (IOException)
            {
                // The thread ended meanwhile.
            }
        }

        return result;
    }
}

/// <summary>
/// Counts the methods the JIT compiles (the runtime's own MethodJittingStarted events, in process):
/// what the tiered compiler's thread spends its time on.
/// </summary>
internal sealed class JitListener : System.Diagnostics.Tracing.EventListener
{
    private readonly Dictionary<string, int> _methods = new(StringComparer.Ordinal);
    private volatile bool _recording;

    public void Start()
    {
        lock (_methods)
            _methods.Clear();
        _recording = true;
    }

    /// <summary>Stops recording; the number of methods compiled and the most frequent names.</summary>
    public (int Count, string Top) Stop()
    {
        _recording = false;
        lock (_methods)
        {
            var top = string.Join(", ", _methods.OrderByDescending(m => m.Value).Take(4).Select(m => string.Create(CultureInfo.InvariantCulture, $"`{m.Key}` ×{m.Value}")));
            return (_methods.Values.Sum(), top);
        }
    }

    protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(eventSource, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x10); // JIT
    }

    protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs eventData)
    {
        if (!_recording || eventData.EventName is null || !eventData.EventName.StartsWith("MethodJittingStarted", StringComparison.Ordinal) || eventData.Payload is null)
            return;
        var ns = eventData.PayloadNames?.IndexOf("MethodNamespace") is int i and >= 0 ? eventData.Payload[i]?.ToString() : null;
        var name = eventData.PayloadNames?.IndexOf("MethodName") is int j and >= 0 ? eventData.Payload[j]?.ToString() : null;
        var key = ns is null ? name ?? "?" : $"{ShortType(ns)}.{name}";
        lock (_methods)
            _methods[key] = _methods.GetValueOrDefault(key) + 1;
    }

    private static string ShortType(string type)
    {
        var tick = type.IndexOf('`', StringComparison.Ordinal);
        var plain = tick > 0 ? type[..tick] : type;
        var dot = plain.LastIndexOf('.');
        return dot >= 0 ? plain[(dot + 1)..] : plain;
    }
}
