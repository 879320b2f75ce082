using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>One MariaDB Galera node of the <see cref="TestCluster"/>.</summary>
internal sealed record ClusterNode(int Number, string Host, int Port, string RootSocket)
{
    /// <summary>Galera's wsrep_node_name of this node ("node1" ...), what @@wsrep_node_name answers.</summary>
    public string Name => "node" + Number.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// A throwaway 3-node MariaDB Galera cluster behind one HAProxy (build/cluster.sh), for the cluster tests.
/// </summary>
/// <remarks>
/// <para>
/// With NHK_CLUSTER_STATE set to the folder of a cluster that runs already (started by
/// <c>build/cluster.sh start</c> with the same variable), the tests use it and leave it running.
/// Otherwise the first fixture that asks starts one in a fresh folder under the temp folder, and
/// <see cref="Integration.Cluster.ClusterShutdown"/> stops it once the fixtures of its namespace
/// (NHKeepAlive.Tests.Integration.Cluster, where every cluster fixture belongs) have run. NHK_CLUSTER=off skips the cluster tests.
/// </para>
/// <para>
/// Where the cluster cannot run (not Linux, not root, less than 3 GiB of free memory, the packages
/// missing and not installable, the script failing), <see cref="SkipReason"/> says why, so that a
/// fixture can <c>Assert.Ignore</c> with it.
/// </para>
/// <para>
/// HAProxy sends every connection to node 1 while it is healthy (nodes 2 and 3 are backups) and takes
/// a node out when it is not Synced, refuses queries or is read-only (an external check; see
/// docs/cluster.md), cutting that node's sessions.
/// </para>
/// </remarks>
internal sealed class TestCluster
{
    private const long MinimumFreeBytes = 3L << 30;
    private static readonly object Gate = new();
    private static TestCluster? _shared;

    private readonly Dictionary<string, string> _env;
    private readonly string? _script;

    private TestCluster(string skipReason)
    {
        SkipReason = skipReason;
        _env = new Dictionary<string, string>(StringComparer.Ordinal);
        Nodes = [];
    }

    private TestCluster(string script, Dictionary<string, string> env, bool owned)
    {
        _script = script;
        _env = env;
        Owned = owned;
        var count = int.Parse(Get("NHK_CLUSTER_NODES"), CultureInfo.InvariantCulture);
        Nodes = Enumerable.Range(1, count)
            .Select(n => new ClusterNode(
                n,
                Get($"NHK_CLUSTER_NODE{n}_HOST"),
                int.Parse(Get($"NHK_CLUSTER_NODE{n}_PORT"), CultureInfo.InvariantCulture),
                Get($"NHK_CLUSTER_NODE{n}_ROOT_SOCKET")))
            .ToList();
    }

    /// <summary>Why the cluster cannot be used here; null when it runs.</summary>
    public string? SkipReason { get; }

    /// <summary>Whether this test run started the cluster (and so stops it at the end).</summary>
    public bool Owned { get; }

    /// <summary>The cluster's folder (NHK_CLUSTER_STATE): the script's state, logs and env file.</summary>
    public string State => Get("NHK_CLUSTER_STATE");

    public IReadOnlyList<ClusterNode> Nodes { get; }

    public string HaproxyHost => Get("NHK_CLUSTER_HAPROXY_HOST");

    public int HaproxyPort => int.Parse(Get("NHK_CLUSTER_HAPROXY_PORT"), CultureInfo.InvariantCulture);

    /// <summary>HAProxy's timeout client and timeout server: a connection idle longer than this is cut.</summary>
    public TimeSpan HaproxyTimeout => TimeSpan.FromSeconds(int.Parse(Get("NHK_CLUSTER_HAPROXY_TIMEOUT"), CultureInfo.InvariantCulture));

    public string User => Get("NHK_CLUSTER_USER");

    public string Password => Get("NHK_CLUSTER_PASSWORD");

    public string Database => Get("NHK_CLUSTER_DATABASE");

    /// <summary>
    /// The cluster shared by every fixture of this test run: the one NHK_CLUSTER_STATE names, or one
    /// started now (about 20 s). Never throws: check <see cref="SkipReason"/>.
    /// </summary>
    public static TestCluster Shared
    {
        get
        {
            lock (Gate)
                return _shared ??= Acquire();
        }
    }

    /// <summary>Stops the shared cluster if this test run started it.</summary>
    public static void StopShared()
    {
        lock (Gate)
        {
            if (_shared is { Owned: true } cluster)
            {
                try
                {
                    cluster.Run("stop", TimeSpan.FromSeconds(90));
                }
                catch (InvalidOperationException e)
                {
                    TestContextWriteLine("build/cluster.sh stop: " + e.Message);
                }
            }

            _shared = null;
        }
    }

    /// <summary>A connection string for <paramref name="driver"/> to <paramref name="host"/>:<paramref name="port"/>.</summary>
    public string ConnectionString(MySqlDriver driver, string host, int port, string? extra = null)
    {
        var ssl = driver == MySqlDriver.MySqlConnector ? "SslMode=None" : "SslMode=Disabled";
        var cs = $"Server={host};Port={port.ToString(CultureInfo.InvariantCulture)};User ID={User};Password={Password};Database={Database};{ssl};Connection Timeout=5";
        return extra is null ? cs : cs + ";" + extra;
    }

    /// <summary>A connection string through HAProxy.</summary>
    public string HaproxyConnectionString(MySqlDriver driver, string? extra = null) =>
        ConnectionString(driver, HaproxyHost, HaproxyPort, extra);

    /// <summary>A connection string straight to node <paramref name="node"/> (1-based).</summary>
    public string NodeConnectionString(int node, MySqlDriver driver, string? extra = null) =>
        ConnectionString(driver, Node(node).Host, Node(node).Port, extra);

    public ClusterNode Node(int number) =>
        Nodes.FirstOrDefault(n => n.Number == number) ?? throw new ArgumentOutOfRangeException(nameof(number), number, "no such node");

    /// <summary>SIGKILL node N (a crash). <see cref="StartNode"/> brings it back.</summary>
    public void Kill(int node) => Run("kill " + Arg(node), TimeSpan.FromSeconds(30));

    /// <summary>Starts a killed or stopped node; returns once it is Synced (rejoining takes 5-20 s).</summary>
    public void StartNode(int node) => Run("start-node " + Arg(node), TimeSpan.FromSeconds(150));

    /// <summary>Node N refuses queries (wsrep_reject_queries=ALL): clients get 1047.</summary>
    public void Reject(int node) => Run("reject " + Arg(node), TimeSpan.FromSeconds(30));

    /// <summary>Node N is cut off the cluster (gmcast.isolate=1) and leaves the primary component about 5 s later.</summary>
    public void Isolate(int node) => Run("isolate " + Arg(node), TimeSpan.FromSeconds(30));

    /// <summary>Node N turns read_only=1: the test user's writes get 1290.</summary>
    public void ReadOnly(int node) => Run("readonly " + Arg(node), TimeSpan.FromSeconds(30));

    /// <summary>Lifts reject, isolate and read-only on node N; returns once it is Synced.</summary>
    public void Heal(int node) => Run("heal " + Arg(node), TimeSpan.FromSeconds(90));

    /// <summary>Node N as HAProxy sees it now: "UP", "DOWN", ... ("" when HAProxy does not answer).</summary>
    public string HaproxyState(int node) => Run("haproxy-state " + Arg(node), TimeSpan.FromSeconds(15)).Trim();

    /// <summary>Waits, boundedly, until HAProxy shows node N as <paramref name="state"/> ("UP" or "DOWN"); false when it did not.</summary>
    public bool WaitForHaproxy(int node, string state, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (string.Equals(HaproxyState(node), state, StringComparison.Ordinal))
                return true;
            if (watch.Elapsed > limit)
                return false;
            Thread.Sleep(100);
        }
    }

    /// <summary>Every node's wsrep state, read_only, reject_queries and HAProxy's view (for messages).</summary>
    public string Status()
    {
        try
        {
            return Run("status", TimeSpan.FromSeconds(30));
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// Puts the cluster back as a test found it: every node running, accepting queries, writable, in the
    /// cluster, and UP in HAProxy. Bounded (about 2 minutes at most).
    /// </summary>
    public void Restore()
    {
        foreach (var node in Nodes)
        {
            if (Status().Contains(node.Name + " " + node.Host + ":" + node.Port.ToString(CultureInfo.InvariantCulture) + "  not running", StringComparison.Ordinal))
                StartNode(node.Number);
            else
                Heal(node.Number);
        }

        foreach (var node in Nodes)
        {
            if (!WaitForHaproxy(node.Number, "UP", TimeSpan.FromSeconds(20)))
                throw new InvalidOperationException($"HAProxy did not show {node.Name} UP within 20 s:\n{Status()}");
        }
    }

    private static string Arg(int node) => node.ToString(CultureInfo.InvariantCulture);

    private string Get(string name) =>
        _env.TryGetValue(name, out var value) && value.Length > 0
            ? value
            : throw new InvalidOperationException(SkipReason ?? $"{name} is missing from the cluster's env file");

    private string Run(string arguments, TimeSpan limit) =>
        RunScript(_script ?? throw new InvalidOperationException(SkipReason), arguments, _env.TryGetValue("NHK_CLUSTER_STATE", out var state) ? state : null, limit);

    private static TestCluster Acquire()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
            return new TestCluster("the cluster tests need Linux (build/cluster.sh runs MariaDB Galera and HAProxy from Debian's packages)");
        if (string.Equals(Environment.GetEnvironmentVariable("NHK_CLUSTER"), "off", StringComparison.OrdinalIgnoreCase))
            return new TestCluster("NHK_CLUSTER=off");
        var script = FindScript();
        if (script is null)
            return new TestCluster("build/cluster.sh was not found above the test folder (set NHK_CLUSTER_CONTROL to it)");

        // A cluster that runs already.
        var existing = Environment.GetEnvironmentVariable("NHK_CLUSTER_STATE");
        if (!string.IsNullOrEmpty(existing))
        {
            var envFile = Path.Combine(existing, "env");
            if (!File.Exists(envFile))
                return new TestCluster($"NHK_CLUSTER_STATE={existing} has no env file: start that cluster with 'NHK_CLUSTER_STATE={existing} build/cluster.sh start', or unset the variable");
            return new TestCluster(script, ReadEnv(envFile), owned: false);
        }

        if (!IsRoot())
            return new TestCluster("not root: build/cluster.sh installs Debian packages when they are missing and runs the servers as the mysql user");
        var free = AvailableMemory();
        if (free is { } bytes && bytes < MinimumFreeBytes)
            return new TestCluster($"only {bytes / (1 << 20)} MiB of memory available; the cluster needs 3 GiB free");

        var state = Path.Combine(Path.GetTempPath(), "nhk-cluster-" + Path.GetRandomFileName().Replace('.', '-'));
        try
        {
            // Ten minutes: the first start may install packages with apt-get.
            RunScript(script, "start", state, TimeSpan.FromMinutes(10));
        }
        catch (InvalidOperationException e)
        {
            try
            {
                RunScript(script, "stop", state, TimeSpan.FromSeconds(90));
            }
            catch (InvalidOperationException)
            {
                // Nothing more to do: the start's own message says what went wrong.
            }

            return new TestCluster("the cluster could not start: " + e.Message);
        }

        return new TestCluster(script, ReadEnv(Path.Combine(state, "env")), owned: true);
    }

    private static string? FindScript()
    {
        if (Environment.GetEnvironmentVariable("NHK_CLUSTER_CONTROL") is { Length: > 0 } configured && File.Exists(configured))
            return configured;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "build", "cluster.sh");
            if (File.Exists(candidate))
                return candidate;
        }

        return null;
    }

    private static bool IsRoot()
    {
        try
        {
            // "Uid:	real	effective	saved	fs"
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            var fields = line?.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            return fields is { Length: > 2 } && fields[2] == "0";
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static long? AvailableMemory()
    {
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
            var fields = line?.Split([' '], StringSplitOptions.RemoveEmptyEntries);
            return fields is { Length: > 1 } ? long.Parse(fields[1], CultureInfo.InvariantCulture) * 1024 : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Reads the script's env file: lines of <c>export NAME=VALUE</c>, VALUE possibly in double quotes.</summary>
    private static Dictionary<string, string> ReadEnv(string path)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.StartsWith("export ", StringComparison.Ordinal))
                line = line.Substring("export ".Length);
            var eq = line.IndexOf('=');
            if (eq <= 0)
                continue;
            var value = line.Substring(eq + 1);
            if (value.Length >= 2 && value[0] == '"' && value[value.Length - 1] == '"')
                value = value.Substring(1, value.Length - 2);
            env[line.Substring(0, eq)] = value;
        }

        return env;
    }

    /// <summary>Runs build/cluster.sh; returns its standard output, or throws with its exit code and the end of its standard error.</summary>
    private static string RunScript(string script, string arguments, string? state, TimeSpan limit)
    {
        var psi = new ProcessStartInfo("bash", $"\"{script}\" {arguments}")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (state is not null)
            psi.EnvironmentVariables["NHK_CLUSTER_STATE"] = state;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start bash");
        process.StandardInput.Close();
        var stderr = new StringBuilder();
        var stdout = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stderr)
                    stderr.AppendLine(e.Data);
            }
        };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stdout)
                    stdout.AppendLine(e.Data);
            }
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        if (!process.WaitForExit((int)limit.TotalMilliseconds))
        {
            try
            {
                process.Kill();
            }
            catch (InvalidOperationException)
            {
                // It ended just now.
            }

            throw new InvalidOperationException($"build/cluster.sh {arguments} did not finish within {limit.TotalSeconds} s; its output:\n{Tail(stderr)}");
        }

        process.WaitForExit(); // the asynchronous reads finish
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"build/cluster.sh {arguments} failed (exit {process.ExitCode}):\n{Tail(stderr)}");
        lock (stdout)
            return stdout.ToString();
    }

    private static string Tail(StringBuilder text)
    {
        string all;
        lock (text)
            all = text.ToString();
        var lines = all.Split('\n');
        return string.Join("\n", lines.Skip(Math.Max(0, lines.Length - 25)));
    }

    private static void TestContextWriteLine(string message) => NUnit.Framework.TestContext.Progress.WriteLine(message);
}
