using System;
using System.Collections.Generic;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading;

namespace NHKeepAlive.Benchmarks;

/// <summary>
/// A database per tenant at the ADO.NET level: one connection string per tenant database, 8 threads, through a
/// <see cref="KeepAlivePoolSet"/> (one NHKeepAlive pool per string, what the NHibernate provider uses for tenants)
/// and through the drivers' own pools (one per string), in the same run: sessions/s on each tenant's first touch
/// (cold) and on random tenants after (warm), process threads, working set and server connections afterwards; then
/// what a retired pool costs to build again.
/// </summary>
internal static class Tenants
{
    private const int Workers = 8;
    private const string Prefix = "nhk_bench_tenant_";
    private static readonly TimeSpan s_warm = TimeSpan.FromSeconds(4);

    public static string Measure(Server server, int tenants)
    {
        server.SetMaxConnections(Math.Max(500, (tenants * 2) + 100)); // every tenant's pool keeps its connection
        var md = new StringBuilder();
        var names = Enumerable.Range(0, tenants).Select(i => Prefix + i.ToString("D4", CultureInfo.InvariantCulture)).ToList();
        Console.WriteLine($"  creating {tenants} tenant databases");
        Create(server, names);
        try
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"### Tenants: {tenants} databases, {Workers} threads");
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"Measured at the ADO.NET level (not through NHibernate): one connection string per tenant database, a session = take a connection, `UPDATE t SET v = v + 1 WHERE id = 1`, `SELECT v FROM t WHERE id = 1`, give it back. NHKeepAlive is a `KeepAlivePoolSet` (one pool per string, built on first use; what the NHibernate provider and `KeepAliveMultiTenancyConnectionProvider` use for tenants), stock is the driver's own pool (one per string). Cold: {Workers} threads touch every tenant once (its first session); warm: random tenants for {s_warm.TotalSeconds:0} s. Threads, working set (after a full GC) and the server's connections are read after the warm phase; the configurations run one after another in one process, so a later one inherits the thread pool's threads of the earlier ones.");
            md.AppendLine();
            md.AppendLine("| configuration | cold sessions/s | warm sessions/s | process threads | working set | server connections | errors |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            var baseline = ProcessThreads();
            foreach (var driver in new[] { MySqlDriver.MySqlData, MySqlDriver.MySqlConnector })
            {
                var strings = names.Select(n => MySqlConnectionStrings.WithDatabase(server.ConnectionString(driver), n, driver)).ToList();
                var stock = Run(server, $"{Config.DriverName(driver)} stock pools", strings, Stock(driver), () => ClearStockPools(driver));
                var set = new KeepAlivePoolSet(new KeepAliveOptions { Driver = driver }, KeepAliveOptions.DefaultTenantPoolRetireAfter);
                var keepAlive = Run(server, $"NHKeepAlive ({Config.DriverName(driver)})", strings, cs => set.Rent(cs), set.Dispose);
                md.AppendLine(stock.Row(null));
                md.AppendLine(keepAlive.Row(stock));
            }

            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"Process threads at the start of this section: {baseline}.");
            md.AppendLine();
            md.AppendLine(Recreate(server, names.Take(20).ToList()));
        }
        finally
        {
            Console.WriteLine("  dropping the tenant databases");
            Drop(server);
        }

        return md.ToString();
    }

    private sealed record Outcome(string Name, double Cold, double Warm, int Threads, long WorkingSet, long Connections, long Errors)
    {
        public string Row(Outcome? stock) => string.Create(CultureInfo.InvariantCulture, $"| {Name} | {Cold:N0}{Ratio(Cold, stock?.Cold)} | {Warm:N0}{Ratio(Warm, stock?.Warm)} | {Threads}{Delta(Threads, stock?.Threads)} | {WorkingSet / (1024.0 * 1024):0} MB{Ratio(WorkingSet, stock?.WorkingSet)} | {Connections} | {Errors} |");

        private static string Ratio(double value, double? stock) => stock is > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({value / stock.Value:0.00}x)") : string.Empty;

        private static string Delta(int value, int? stock) => stock is { } s ? string.Create(CultureInfo.InvariantCulture, $" ({value - s:+0;-0;0})") : string.Empty;
    }

    private static Outcome Run(Server server, string name, List<string> strings, Func<string, DbConnection> open, Action dispose)
    {
        long errors = 0;
        void Session(string cs)
        {
            try
            {
                using var connection = open(cs);
                using var update = connection.CreateCommand();
                update.CommandText = "UPDATE t SET v = v + 1 WHERE id = 1";
                update.ExecuteNonQuery();
                using var select = connection.CreateCommand();
                select.CommandText = "SELECT v FROM t WHERE id = 1";
                select.ExecuteScalar();
            }
#pragma warning disable CA1031 // Counted and reported.
            catch (Exception e)
#pragma warning restore CA1031
            {
                if (Interlocked.Increment(ref errors) == 1)
                    Console.WriteLine($"  {name}: first error: {e.GetType().Name}: {e.Message}");
            }
        }

        // Cold: every tenant's first session.
        var clock = Stopwatch.StartNew();
        Parallel(w =>
        {
            for (var i = w; i < strings.Count; i += Workers)
                Session(strings[i]);
        });
        var cold = strings.Count / clock.Elapsed.TotalSeconds;

        // Warm: random tenants.
        long sessions = 0;
        var stop = false;
        clock.Restart();
        Parallel(w =>
        {
            var random = new Random(w);
            while (!Volatile.Read(ref stop))
            {
                Session(strings[random.Next(strings.Count)]);
                Interlocked.Increment(ref sessions);
                if (clock.Elapsed >= s_warm)
                    Volatile.Write(ref stop, true);
            }
        });
        var warm = sessions / clock.Elapsed.TotalSeconds;

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var threads = ProcessThreads();
        long workingSet;
        using (var process = Process.GetCurrentProcess())
            workingSet = process.WorkingSet64;
        var connections = server.UserConnections();
        dispose();
        WaitForNoConnections(server);
        var outcome = new Outcome(name, cold, warm, threads, workingSet, connections, Interlocked.Read(ref errors));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-32} cold {cold,7:N0}/s, warm {warm,7:N0}/s, {threads} threads, {workingSet / (1024.0 * 1024):0} MB, {connections} server connections, {outcome.Errors} errors"));
        return outcome;
    }

    /// <summary>A pool retired (no loan for 1 s) and built again: the next session's latency, against a warm session and the stock pool's first session on a database.</summary>
    private static string Recreate(Server server, List<string> names)
    {
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"What a retired pool costs to build again: {names.Count} tenants used once, their pools retired (nothing on loan for 1 s), then one session each, one at a time (median latency of a session as above):");
        md.AppendLine();
        md.AppendLine("| driver | NHKeepAlive, warm | NHKeepAlive, first session after retirement | stock, first session on a database (new pool) | stock, warm |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var driver in new[] { MySqlDriver.MySqlData, MySqlDriver.MySqlConnector })
        {
            var strings = names.Select(n => MySqlConnectionStrings.WithDatabase(server.ConnectionString(driver), n, driver)).ToList();
            using (var set = new KeepAlivePoolSet(new KeepAliveOptions { Driver = driver }, TimeSpan.FromSeconds(1)))
            {
                strings.ForEach(cs => Session(set.Rent(cs)));
                var deadline = Stopwatch.StartNew();
                while (set.Count > 0 && deadline.Elapsed < TimeSpan.FromSeconds(30))
                    Thread.Sleep(100);
                var again = strings.Select(cs => Timed(() => Session(set.Rent(cs)))).ToList();
                var warm = strings.Select(cs => Timed(() => Session(set.Rent(cs)))).ToList();
                ClearStockPools(driver);
                var stockFirst = strings.Select(cs => Timed(() => Session(Stock(driver)(cs)))).ToList();
                var stockWarm = strings.Select(cs => Timed(() => Session(Stock(driver)(cs)))).ToList();
                ClearStockPools(driver);
                md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {Config.DriverName(driver)} | {Median(warm):0.00} ms | {Median(again):0.00} ms | {Median(stockFirst):0.00} ms | {Median(stockWarm):0.00} ms |"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {Config.DriverName(driver)}: warm {Median(warm):0.00} ms, after retirement {Median(again):0.00} ms, stock first {Median(stockFirst):0.00} ms, stock warm {Median(stockWarm):0.00} ms"));
            }

            WaitForNoConnections(server);
        }

        return md.ToString();

        static void Session(DbConnection connection)
        {
            using (connection)
            {
                using var update = connection.CreateCommand();
                update.CommandText = "UPDATE t SET v = v + 1 WHERE id = 1";
                update.ExecuteNonQuery();
                using var select = connection.CreateCommand();
                select.CommandText = "SELECT v FROM t WHERE id = 1";
                select.ExecuteScalar();
            }
        }

        static double Timed(Action action)
        {
            var watch = Stopwatch.StartNew();
            action();
            return watch.Elapsed.TotalMilliseconds;
        }

        static double Median(List<double> values) => values.OrderBy(v => v).ElementAt(values.Count / 2);
    }

    private static Func<string, DbConnection> Stock(MySqlDriver driver) => cs =>
    {
        DbConnection connection = driver == MySqlDriver.MySqlData ? new MySql.Data.MySqlClient.MySqlConnection(cs) : new MySqlConnector.MySqlConnection(cs);
        connection.Open();
        return connection;
    };

    private static void ClearStockPools(MySqlDriver driver)
    {
        if (driver == MySqlDriver.MySqlData)
            MySql.Data.MySqlClient.MySqlConnection.ClearAllPools();
        else
            MySqlConnector.MySqlConnection.ClearAllPools();
    }

    private static void Parallel(Action<int> work)
    {
        var threads = Enumerable.Range(0, Workers).Select(w => new Thread(() => work(w)) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
    }

    private static void WaitForNoConnections(Server server)
    {
        var watch = Stopwatch.StartNew();
        while (server.UserConnections() > 0 && watch.Elapsed < TimeSpan.FromSeconds(30))
            Thread.Sleep(100);
    }

    private static int ProcessThreads()
    {
        using var process = Process.GetCurrentProcess();
        return process.Threads.Count;
    }

    private static void Create(Server server, IReadOnlyList<string> names)
    {
        Drop(server);
        using var admin = server.Admin();
        foreach (var name in names)
        {
            using var command = admin.CreateCommand();
            command.CommandText = $"CREATE DATABASE `{name}`; CREATE TABLE `{name}`.t (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB; INSERT INTO `{name}`.t VALUES (1, 0)";
            command.ExecuteNonQuery();
        }
    }

    private static void Drop(Server server)
    {
        using var admin = server.Admin();
        var names = new List<string>();
        using (var list = admin.CreateCommand())
        {
            list.CommandText = $"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{Prefix}%'";
            using var reader = list.ExecuteReader();
            while (reader.Read())
                names.Add(reader.GetString(0));
        }

        foreach (var name in names)
        {
            using var command = admin.CreateCommand();
            command.CommandText = $"DROP DATABASE IF EXISTS `{name}`";
            command.ExecuteNonQuery();
        }
    }
}
