using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;

namespace NHKeepAlive.Samples;

/// <summary>
/// The throwaway Galera cluster of build/cluster.sh (3 nodes on 127.0.0.1-3, one HAProxy in front),
/// shared by the benchmarks' failover table and the demo's cluster act.
/// </summary>
internal sealed class ClusterControl
{
    public const string Table = "failover_writes";
    private const long MinimumFreeBytes = 3L << 30;
    private readonly Dictionary<string, string> _env;

    private ClusterControl(string script, Dictionary<string, string> env, bool owned)
    {
        Script = script;
        _env = env;
        Owned = owned;
    }

    /// <summary>Whether this process started the cluster (and so stops it).</summary>
    public bool Owned { get; }

    public string Script { get; }

    public string State => Get("NHK_CLUSTER_STATE");

    public string HostList => Get("NHK_CLUSTER_HOSTS");

    public int Port => int.Parse(Get("NHK_CLUSTER_PORT"), CultureInfo.InvariantCulture);

    public int HaproxyPort => int.Parse(Get("NHK_CLUSTER_HAPROXY_PORT"), CultureInfo.InvariantCulture);

    /// <summary>wsrep (the node's wsrep state, read_only, reject_queries) or mysql (a login only).</summary>
    public string HaproxyCheck => _env.TryGetValue("NHK_CLUSTER_HAPROXY_CHECK", out var v) && v.Length > 0 ? v : "wsrep";

    public string HaproxyTimeoutSeconds => Get("NHK_CLUSTER_HAPROXY_TIMEOUT");

    /// <summary>
    /// The cluster NHK_CLUSTER_STATE names when it runs (left running), else a new one in a fresh
    /// folder (stopped by <see cref="Stop"/>); null with the reason where it cannot run here.
    /// </summary>
    public static ClusterControl? Acquire(string root, Action<string> progress, out string? skipReason)
    {
        skipReason = null;
        var script = Path.Combine(root, "build", "cluster.sh");
        if (!OperatingSystem.IsLinux())
            skipReason = "not Linux (build/cluster.sh runs Debian's MariaDB Galera and HAProxy)";
        else if (string.Equals(Environment.GetEnvironmentVariable("NHK_CLUSTER"), "off", StringComparison.OrdinalIgnoreCase))
            skipReason = "NHK_CLUSTER=off";
        else if (!File.Exists(script))
            skipReason = $"{script} is missing";
        if (skipReason is not null)
            return null;

        if (Environment.GetEnvironmentVariable("NHK_CLUSTER_STATE") is { Length: > 0 } existing && File.Exists(Path.Combine(existing, "env")))
        {
            progress($"using the running cluster in {existing} (NHK_CLUSTER_STATE); it is left running");
            return new ClusterControl(script, ReadEnv(Path.Combine(existing, "env")), owned: false);
        }

        if (!IsRoot())
            skipReason = "not root: build/cluster.sh installs Debian packages when they are missing and runs the servers as the mysql user";
        else if (AvailableMemory() is { } free && free < MinimumFreeBytes)
            skipReason = $"only {free >> 20} MiB of memory available; the cluster needs 3 GiB free";
        if (skipReason is not null)
            return null;

        var state = Path.Combine(Path.GetTempPath(), "nhk-cluster-" + Path.GetRandomFileName().Replace('.', '-'));
        progress($"starting a throwaway 3-node Galera cluster and HAProxy in {state} (build/cluster.sh start, 10-30 s; installs packages on first use)...");
        var watch = Stopwatch.StartNew();
        try
        {
            RunScript(script, "start", state, TimeSpan.FromMinutes(10));
        }
        catch (InvalidOperationException e)
        {
            TryStop(script, state);
            skipReason = "the cluster could not start: " + FirstLines(e.Message, 6);
            return null;
        }

        progress($"cluster up in {watch.Elapsed.TotalSeconds:0} s");
        return new ClusterControl(script, ReadEnv(Path.Combine(state, "env")), owned: true);
    }

    /// <summary>Stops the cluster if this process started it (bounded).</summary>
    public void Stop()
    {
        if (Owned)
            TryStop(Script, State);
    }

    public string ConnectionString(MySqlDriver driver, string host, int port, string? extra = null)
    {
        var ssl = driver == MySqlDriver.MySqlConnector ? "SslMode=None" : "SslMode=Disabled";
        var cs = $"Server={host};Port={port.ToString(CultureInfo.InvariantCulture)};User ID={Get("NHK_CLUSTER_USER")};Password={Get("NHK_CLUSTER_PASSWORD")};Database={Get("NHK_CLUSTER_DATABASE")};{ssl};Connection Timeout=5;Default Command Timeout=10";
        return extra is null ? cs : cs + ";" + extra;
    }

    public string HaproxyConnectionString(MySqlDriver driver) => ConnectionString(driver, "127.0.0.1", HaproxyPort);

    public string HostListConnectionString(MySqlDriver driver) => ConnectionString(driver, HostList, Port);

    public string NodeConnectionString(int node) =>
        ConnectionString(MySqlDriver.MySqlConnector, "127.0.0." + node.ToString(CultureInfo.InvariantCulture), Port, "Pooling=false;Connection Timeout=2;Default Command Timeout=2");

    /// <summary>Runs build/cluster.sh with <paramref name="arguments"/> on this cluster.</summary>
    public string Run(string arguments, TimeSpan limit) => RunScript(Script, arguments, State, limit);

    public void Reject(int node) => Run("reject " + node.ToString(CultureInfo.InvariantCulture), TimeSpan.FromSeconds(30));

    public void ReadOnly(int node) => Run("readonly " + node.ToString(CultureInfo.InvariantCulture), TimeSpan.FromSeconds(30));

    public void Kill(int node) => Run("kill " + node.ToString(CultureInfo.InvariantCulture), TimeSpan.FromSeconds(30));

    /// <summary>Lifts reject/readonly/isolate on node N; returns once it is Synced.</summary>
    public void Heal(int node) => Run("heal " + node.ToString(CultureInfo.InvariantCulture), TimeSpan.FromSeconds(90));

    /// <summary>Starts a killed node; returns once it is Synced.</summary>
    public void StartNode(int node) => Run("start-node " + node.ToString(CultureInfo.InvariantCulture), TimeSpan.FromSeconds(150));

    /// <summary>Every node running, healthy and UP in HAProxy (bounded, about 2 minutes at most).</summary>
    public void Restore()
    {
        var status = Run("status", TimeSpan.FromSeconds(30));
        for (var n = 1; n <= 3; n++)
        {
            var line = status.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith("node" + n.ToString(CultureInfo.InvariantCulture) + " ", StringComparison.Ordinal)) ?? string.Empty;
            if (line.Contains("not running", StringComparison.Ordinal))
                StartNode(n);
            else
                Heal(n);
        }

        for (var n = 1; n <= 3; n++)
            Run($"wait-haproxy {n} UP 30", TimeSpan.FromSeconds(40));
    }

    /// <summary>Creates the writers' table (once) through node 2.</summary>
    public void PrepareTable()
    {
        using var c = new MySqlConnector.MySqlConnection(NodeConnectionString(2));
        c.Open();
        using var command = c.CreateCommand();
        command.CommandText = $"CREATE TABLE IF NOT EXISTS {Table} (id CHAR(32) PRIMARY KEY, run VARCHAR(64) NOT NULL, node VARCHAR(16) NOT NULL, KEY (run)) ENGINE=InnoDB";
        command.ExecuteNonQuery();
    }

    /// <summary>The ids stored for <paramref name="run"/>, read causally (wsrep_sync_wait) through node 2.</summary>
    public HashSet<string> StoredIds(string run)
    {
        using var c = new MySqlConnector.MySqlConnection(NodeConnectionString(2).Replace("Default Command Timeout=2", "Default Command Timeout=30", StringComparison.Ordinal));
        c.Open();
        using (var sync = c.CreateCommand())
        {
            sync.CommandText = "SET SESSION wsrep_sync_wait = 1";
            sync.ExecuteNonQuery();
        }

        using var read = c.CreateCommand();
        read.CommandText = $"SELECT id FROM {Table} WHERE run = @run";
        read.Parameters.AddWithValue("@run", run);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        using var reader = read.ExecuteReader();
        while (reader.Read())
            ids.Add(reader.GetString(0));
        return ids;
    }

    /// <summary>Polls (every 50 ms) a bare connection to node <paramref name="node"/> until it commits a write; the time it did, or null.</summary>
    public bool WaitUntilNodeAcceptsWrites(int node, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < limit)
        {
            try
            {
                using var c = new MySqlConnector.MySqlConnection(NodeConnectionString(node));
                c.Open();
                using var command = c.CreateCommand();
                command.CommandText = $"INSERT INTO {Table} (id, run, node) VALUES ('{Guid.NewGuid():N}', 'probe', 'probe')";
                command.ExecuteNonQuery();
                return true;
            }
            catch (Exception e) when (e is DbException or InvalidOperationException or TimeoutException)
            {
                Thread.Sleep(50);
            }
        }

        return false;
    }

    private string Get(string name) =>
        _env.TryGetValue(name, out var value) && value.Length > 0 ? value : throw new InvalidOperationException($"{name} is missing from the cluster's env file");

    private static void TryStop(string script, string state)
    {
        try
        {
            RunScript(script, "stop", state, TimeSpan.FromSeconds(90));
        }
        catch (InvalidOperationException)
        {
            // Best effort: the state folder names what is left.
        }
    }

    private static bool IsRoot()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        var fields = line?.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
        return fields is { Length: > 2 } && fields[2] == "0";
    }

    private static long? AvailableMemory()
    {
        var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
        var fields = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields is { Length: > 1 } ? long.Parse(fields[1], CultureInfo.InvariantCulture) * 1024 : null;
    }

    private static Dictionary<string, string> ReadEnv(string path)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.StartsWith("export ", StringComparison.Ordinal))
                line = line["export ".Length..];
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
                continue;
            var value = line[(eq + 1)..];
            if (value.Length >= 2 && value[0] == '"' && value[^1] == '"')
                value = value[1..^1];
            env[line[..eq]] = value;
        }

        return env;
    }

    private static string FirstLines(string text, int lines) => string.Join(" / ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Take(lines));

    private static string RunScript(string script, string arguments, string state, TimeSpan limit)
    {
        var psi = new ProcessStartInfo("bash", $"\"{script}\" {arguments}")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.EnvironmentVariables["NHK_CLUSTER_STATE"] = state;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start bash");
        process.StandardInput.Close();
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit((int)limit.TotalMilliseconds))
        {
            try
            {
                process.Kill(); // bash only, the child we started; the script's own waits are bounded
            }
            catch (InvalidOperationException)
            {
            }

            throw new InvalidOperationException($"build/cluster.sh {arguments} did not finish within {limit.TotalSeconds:0} s");
        }

        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            lock (stderr)
                throw new InvalidOperationException($"build/cluster.sh {arguments} failed (exit {process.ExitCode}): {stderr.ToString().Trim()}");
        }

        lock (stdout)
            return stdout.ToString();
    }
}

/// <summary>
/// One way the writers get a connection: the stock pool of a driver through HAProxy, or NHKeepAlive
/// with the host list. <see cref="Write"/> does one unit: open, INSERT a row with a client-made key
/// (and read back the node's name in the same round trip), close; it returns the node that took it.
/// </summary>
internal sealed class WriterConfig : IDisposable
{
    private readonly Func<string, string, string> _write;
    private readonly Action _dispose;

    private WriterConfig(string name, string shortName, Func<string, string, string> write, Action dispose)
    {
        Name = name;
        ShortName = shortName;
        _write = write;
        _dispose = dispose;
    }

    public string Name { get; }

    public string ShortName { get; }

    public bool IsKeepAlive { get; private init; }

    public string Write(string run, string id) => _write(run, id);

    /// <summary>Empties a stock pool (what an operator does to move an application back to the preferred node); NHKeepAlive's pool is left alone.</summary>
    public void ClearStockPool()
    {
        if (!IsKeepAlive)
            _dispose();
    }

    public void Dispose() => _dispose();

    public static WriterConfig Stock(ClusterControl cluster, MySqlDriver driver)
    {
        var cs = cluster.HaproxyConnectionString(driver);
        if (driver == MySqlDriver.MySqlData)
        {
            return new WriterConfig("MySql.Data pool via HAProxy", "stock MySql.Data",
                (run, id) =>
                {
                    using var c = new MySql.Data.MySqlClient.MySqlConnection(cs);
                    c.Open();
                    return Insert(c, run, id);
                },
                MySql.Data.MySqlClient.MySqlConnection.ClearAllPools);
        }

        return new WriterConfig("MySqlConnector pool via HAProxy", "stock MySqlConnector",
            (run, id) =>
            {
                using var c = new MySqlConnector.MySqlConnection(cs);
                c.Open();
                return Insert(c, run, id);
            },
            MySqlConnector.MySqlConnection.ClearAllPools);
    }

    /// <summary>NHKeepAlive on the host list; a failed write is reported to the pool (a node error leaves the node).</summary>
    public static WriterConfig KeepAlive(ClusterControl cluster, MySqlDriver driver, TimeSpan keepAliveInterval)
    {
        var pool = new KeepAlivePool(new KeepAliveOptions
        {
            ConnectionString = cluster.HostListConnectionString(driver),
            Driver = driver,
            KeepAliveInterval = keepAliveInterval,
            ShutdownGracePeriod = TimeSpan.Zero,
        });
        var driverName = driver == MySqlDriver.MySqlData ? "MySql.Data" : "MySqlConnector";
        return new WriterConfig($"NHKeepAlive on {driverName}, host list", $"NHKeepAlive {driverName}",
            (run, id) =>
            {
                using var lease = pool.Lease();
                try
                {
                    return Insert(lease.Connection, run, id);
                }
                catch (Exception e)
                {
                    lease.ReportFailure(e);
                    throw;
                }
            },
            pool.Dispose)
        { IsKeepAlive = true };
    }

    private static string Insert(DbConnection connection, string run, string id)
    {
        using var command = connection.CreateCommand();
        command.CommandText = $"INSERT INTO {ClusterControl.Table} (id, run, node) VALUES ('{id}', '{run}', @@wsrep_node_name); SELECT @@wsrep_node_name";
        return Convert.ToString(command.ExecuteScalar(), CultureInfo.InvariantCulture) ?? "?";
    }
}

/// <summary>One write as its caller saw it.</summary>
internal sealed record WriteResult(TimeSpan Started, TimeSpan Finished, string Id, string? Node, int? ErrorNumber, Exception? Error)
{
    public TimeSpan Latency => Finished - Started;
}

/// <summary>Writers that loop {write; pause} on a <see cref="WriterConfig"/> until stopped, recording each write.</summary>
internal sealed class WriteRun : IDisposable
{
    private readonly WriterConfig _config;
    private readonly TimeSpan _pause;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ConcurrentQueue<WriteResult> _results = new();
    private readonly Thread[] _writers;
    private volatile bool _stop;

    public WriteRun(WriterConfig config, string run, int writers, TimeSpan pause)
    {
        _config = config;
        RunTag = run;
        _pause = pause;
        _writers = Enumerable.Range(0, writers).Select(i => new Thread(Write) { IsBackground = true, Name = "writer " + i.ToString(CultureInfo.InvariantCulture) }).ToArray();
        foreach (var t in _writers)
            t.Start();
    }

    public string RunTag { get; }

    public TimeSpan Elapsed => _clock.Elapsed;

    public IReadOnlyList<WriteResult> Results => [.. _results.OrderBy(r => r.Started)];

    public void Until(TimeSpan at)
    {
        var wait = at - _clock.Elapsed;
        if (wait > TimeSpan.Zero)
            Thread.Sleep(wait);
    }

    public void Stop()
    {
        _stop = true;
        foreach (var t in _writers)
            t.Join(TimeSpan.FromSeconds(30));
    }

    public void Dispose() => Stop();

    private void Write()
    {
        while (!_stop)
        {
            var id = Guid.NewGuid().ToString("N");
            var started = _clock.Elapsed;
            try
            {
                var node = _config.Write(RunTag, id);
                _results.Enqueue(new WriteResult(started, _clock.Elapsed, id, node, null, null));
            }
#pragma warning disable CA1031 // Every failure is what the caller saw: recorded, never retried.
            catch (Exception e)
#pragma warning restore CA1031
            {
                _results.Enqueue(new WriteResult(started, _clock.Elapsed, id, null, DisconnectClassifier.ErrorNumber(e) ?? NumberOf(e), e));
            }

            Thread.Sleep(_pause);
        }
    }

    /// <summary>The MySQL error number inside a wrapper exception, if any.</summary>
    private static int? NumberOf(Exception e)
    {
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (DisconnectClassifier.ErrorNumber(inner) is { } n)
                return n;
        }

        return null;
    }
}
