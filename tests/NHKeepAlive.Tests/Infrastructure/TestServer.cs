using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>
/// The real MariaDB the integration tests run against. build/test.sh starts a throwaway one and sets
/// the NHK_TEST_* variables; point them at another server to run the tests there.
/// </summary>
internal static class TestServer
{
    public static string Host => Env("NHK_TEST_MYSQL_HOST");

    public static int Port => int.Parse(Env("NHK_TEST_MYSQL_PORT"), System.Globalization.CultureInfo.InvariantCulture);

    public static string User => Env("NHK_TEST_MYSQL_USER");

    public static string Password => Env("NHK_TEST_MYSQL_PASSWORD");

    public static string Database => Env("NHK_TEST_MYSQL_DATABASE");

    /// <summary>
    /// The user that may connect over TLS only (<c>REQUIRE SSL</c>), which build/mariadb.sh creates beside
    /// a throwaway CA; null on a server of yours without one (the TLS tests are then skipped).
    /// </summary>
    public static string? TlsUser => Optional("NHK_TEST_MYSQL_TLS_USER");

    /// <summary>The TLS user's password (the test user's when not set apart).</summary>
    public static string TlsPassword => Optional("NHK_TEST_MYSQL_TLS_PASSWORD") ?? Password;

    /// <summary>The PEM file of the CA that signed the server's certificate, when known.</summary>
    public static string? TlsCa => Optional("NHK_TEST_MYSQL_TLS_CA");

    /// <summary>"No TLS" as <paramref name="driver"/> names it (MySql.Data 26 rejects None, MySqlConnector knows None).</summary>
    public static string SslModeDisabled(MySqlDriver driver) => driver == MySqlDriver.MySqlConnector ? "None" : "Disabled";

    /// <summary>A connection string for <paramref name="driver"/>, without TLS (every test but the TLS ones).</summary>
    public static string ConnectionString(MySqlDriver driver, int? port = null, string? extra = null)
    {
        var cs = $"Server={Host};Port={port ?? Port};User ID={User};Password={Password};Database={Database};SslMode={SslModeDisabled(driver)};Connection Timeout=5";
        return extra is null ? cs : cs + ";" + extra;
    }

    /// <summary>
    /// A connection string for <paramref name="driver"/> as <see cref="TlsUser"/>, over TLS
    /// (<paramref name="sslMode"/>: Required unless a test asks otherwise).
    /// </summary>
    public static string TlsConnectionString(MySqlDriver driver, string sslMode = "Required", string? extra = null)
    {
        var user = TlsUser ?? throw new InvalidOperationException("NHK_TEST_MYSQL_TLS_USER is not set: build/mariadb.sh creates a user that requires TLS and sets it.");
        var cs = $"Server={Host};Port={Port};User ID={user};Password={TlsPassword};Database={Database};SslMode={sslMode};Connection Timeout=5";
        return extra is null ? cs : cs + ";" + extra;
    }

    /// <summary>A pool on the test server with test-friendly defaults, overridable by <paramref name="configure"/>.</summary>
    public static KeepAlivePool CreatePool(MySqlDriver driver, Action<KeepAliveOptions>? configure = null, int? port = null)
    {
        var options = new KeepAliveOptions
        {
            ConnectionString = ConnectionString(driver, port),
            Driver = driver,
            ConnectionTimeout = TimeSpan.FromSeconds(10),
            ValidationTimeout = TimeSpan.FromSeconds(2),

            // Tests that end holding a connection would wait out the default; those about shutdown set their own.
            ShutdownGracePeriod = TimeSpan.Zero,
        };
        configure?.Invoke(options);
        return new KeepAlivePool(options);
    }

    /// <summary>Whether the tests may stop and start the server (build/mariadb.sh is known).</summary>
    public static bool CanControl => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NHK_TEST_SERVER_CONTROL"));

    /// <summary>Runs build/mariadb.sh with <paramref name="verb"/> (restart, down, up, kill9).</summary>
    public static void Control(string verb)
    {
        if (!CanControl)
            Assert.Ignore("NHK_TEST_SERVER_CONTROL is not set: this test must stop and start the server (run it through build/test.sh).");
        var psi = new ProcessStartInfo("bash", $"\"{Environment.GetEnvironmentVariable("NHK_TEST_SERVER_CONTROL")}\" {verb}")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(60_000))
        {
            process.Kill();
            Assert.Fail($"build/mariadb.sh {verb} did not finish within 60 s");
        }

        if (process.ExitCode != 0)
            Assert.Fail($"build/mariadb.sh {verb} failed ({process.ExitCode}): {stderr.Result}");
    }

    private static string? Optional(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    private static string Env(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{name} is not set. Run the tests with build/test.sh, which starts a throwaway MariaDB, or set the NHK_TEST_MYSQL_* variables to a server of yours.");
}

/// <summary>A side connection (MySqlConnector, no pool) for what tests do to the server: processlist, KILL, global variables.</summary>
internal sealed class ServerAdmin : IDisposable
{
    private MySqlConnector.MySqlConnection _connection;

    public ServerAdmin()
    {
        _connection = Connect();
    }

    private static MySqlConnector.MySqlConnection Connect()
    {
        var connection = new MySqlConnector.MySqlConnection(TestServer.ConnectionString(MySqlDriver.MySqlConnector, extra: "Pooling=false"));
        connection.Open();
        return connection;
    }

    /// <summary>The admin connection, reconnected if a test restarted the server under it.</summary>
    private MySqlConnector.MySqlConnection Connection
    {
        get
        {
            if (!_connection.Ping())
            {
                _connection.Dispose();
                _connection = Connect();
            }

            return _connection;
        }
    }

    public void Execute(string sql)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public object? Scalar(string sql)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    public long Count(string sql) => Convert.ToInt64(Scalar(sql), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Server thread ids of the test users' connections (the test user's and the TLS user's), other than this one.</summary>
    public IReadOnlyList<long> ConnectionIds(string? state = null)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = "SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE USER IN (@user, @tlsUser) AND ID <> CONNECTION_ID()";
        command.Parameters.AddWithValue("@user", TestServer.User);
        command.Parameters.AddWithValue("@tlsUser", TestServer.TlsUser ?? TestServer.User);
        using var reader = command.ExecuteReader();
        var ids = new List<long>();
        while (reader.Read())
        {
            if (state is null || string.Equals(reader.GetString(1), state, StringComparison.OrdinalIgnoreCase))
                ids.Add(reader.GetInt64(0));
        }

        return ids;
    }

    /// <summary>The first column of every row of <paramref name="sql"/>, as numbers.</summary>
    public IReadOnlyList<long> ConnectionIdsOf(string sql)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<long>();
        while (reader.Read())
            values.Add(reader.GetInt64(0));
        return values;
    }

    /// <summary>The first column of every row of <paramref name="sql"/>, as text.</summary>
    public IReadOnlyList<string> Names(string sql)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read())
            values.Add(reader.GetString(0));
        return values;
    }

    public void Kill(long id)
    {
        try
        {
            Execute($"KILL {id}");
        }
        catch (MySqlConnector.MySqlException e) when (e.Number == 1094)
        {
            // Unknown thread id: it went away by itself.
        }
    }

    public void KillAll(IEnumerable<long> ids)
    {
        foreach (var id in ids.ToList())
            Kill(id);
    }

    /// <summary>Sets the global wait_timeout (applies to connections opened after this) and puts it back on dispose.</summary>
    public IDisposable GlobalWaitTimeout(int seconds)
    {
        var before = Count("SELECT @@GLOBAL.wait_timeout");
        Execute($"SET GLOBAL wait_timeout = {seconds}");
        return new Restore(() => Execute($"SET GLOBAL wait_timeout = {before}"));
    }

    /// <summary>Waits, boundedly, until the server shows <paramref name="expected"/> connections of the test user.</summary>
    public bool WaitForConnectionCount(Func<int, bool> expected, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            if (expected(ConnectionIds().Count))
                return true;
            if (DateTime.UtcNow > deadline)
                return false;
            Thread.Sleep(50);
        }
    }

    public void Dispose() => _connection.Dispose();

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
