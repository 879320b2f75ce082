using System;
using System.Collections.Generic;
using System.Data.Common;
using System.Globalization;
using System.Linq;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// The pool over TLS (<c>SslMode=Required</c>, as the user that <c>REQUIRE SSL</c> of build/mariadb.sh's
/// throwaway CA): the socket check still sees the TCP socket under the TLS stream, session resets and the
/// keepalive work, and pings go through the driver, never on the wire (a raw COM_PING inside a TLS
/// session would break it).
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class TlsTests(MySqlDriver driver) : IntegrationTest(driver)
{
    [SetUp]
    public void NeedsTheTlsUser()
    {
        if (TestServer.TlsUser is null)
            Assert.Ignore("NHK_TEST_MYSQL_TLS_USER is not set: run the tests through build/test.sh, whose server has a user that requires TLS.");
    }

    [Category(DriverContractTests.Contract)]
    [Test]
    public void Every_connection_of_the_pool_is_encrypted_and_its_socket_is_found_under_the_TLS_stream()
    {
        using var pool = TlsPool();
        var held = Enumerable.Range(0, 2).Select(_ => pool.Rent()).ToList();

        foreach (var connection in held)
        {
            Assert.That(SessionStatus(connection, "Ssl_cipher"), Is.Not.Empty, "the server sees a TLS session");
            Assert.That(SessionStatus(connection, "Ssl_version"), Does.StartWith("TLS"));
            var (socket, plain) = Drivers.SocketAborter.Inspect(connection.Physical());
            Assert.That(socket, Is.Not.Null, "the TCP socket under the TLS stream, for the socket check");
            Assert.That(plain, Is.False, "a TLS stream is no plain protocol: no ping on the wire");
        }

        TestContext.Out.WriteLine($"{Driver}: {SessionStatus(held[0], "Ssl_version")} {SessionStatus(held[0], "Ssl_cipher")}");
        held.ForEach(c => pool.Return(c));
    }

    /// <summary>The other tests prove something about TLS only because this user cannot connect without it.</summary>
    [Test]
    public void The_TLS_user_is_refused_without_TLS()
    {
        using var pool = CreatePool(o => o.ConnectionString = TestServer.TlsConnectionString(Driver, sslMode: TestServer.SslModeDisabled(Driver)));

        var error = Assert.Throws<ConnectException>(() => pool.Rent())!;
        Assert.That(error.ErrorNumber, Is.EqualTo(1045), error.Message);
    }

    /// <summary>The certificate the server presents is the throwaway CA's (VerifyCA with the CA's PEM file).</summary>
    [Test]
    public void The_server_certificate_verifies_against_the_throwaway_CA()
    {
        if (TestServer.TlsCa is not { } ca)
        {
            Assert.Ignore("NHK_TEST_MYSQL_TLS_CA is not set");
            return;
        }

        using var pool = CreatePool(o => o.ConnectionString = TestServer.TlsConnectionString(Driver, sslMode: "VerifyCA", extra: $"SslCa={ca}"));
        using var lease = pool.Lease();
        Assert.That(SessionStatus(lease.Connection, "Ssl_cipher"), Is.Not.Empty);
    }

    [Category(DriverContractTests.Contract)]
    [Test]
    public void Idle_connections_killed_on_the_server_are_found_by_the_socket_check_with_no_error()
    {
        using var pool = TlsPool(o => o.ValidationBypassWindow = TimeSpan.FromMilliseconds(200));
        var held = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList();
        var ids = held.Select(ConnectionId).ToList();
        held.ForEach(c => pool.Return(c));
        Settled(pool);

        Admin.KillAll(ids);
        Eventually(() => !Admin.ConnectionIds().Intersect(ids).Any(), TimeSpan.FromSeconds(10), "the killed connections are gone");
        Elapse(TimeSpan.FromMilliseconds(250)); // past the bypass window, as a real idle would be
        var errors = Enumerable.Range(0, 3).Select(_ => Request(pool)).Where(e => e is not null).ToList();

        Assert.That(errors, Is.Empty);
        var stats = pool.GetStatistics();
        Assert.That((stats.SocketCheckFailures, stats.ValidationFailures), Is.EqualTo((3L, 0L)), "each killed connection was found by its socket, no ping needed");
    }

    /// <summary>A KILL within milliseconds of the return, inside the bypass window, round after round.</summary>
    [Test]
    public void Connections_killed_right_after_use_never_reach_a_caller()
    {
        const int Rounds = 20;
        using var pool = TlsPool(o => o.KeepAliveInterval = TimeSpan.Zero); // the default 500 ms bypass window
        var errors = new List<Exception>();
        for (var round = 0; round < Rounds; round++)
        {
            long id;
            using (var lease = pool.Lease())
                id = ConnectionId(lease.Connection);
            Settled(pool);

            Admin.Kill(id);
            Eventually(() => !Admin.ConnectionIds().Contains(id), TimeSpan.FromSeconds(10), "the server closed the killed connection");
            if (Request(pool) is { } error)
                errors.Add(error);
        }

        Assert.That(errors, Is.Empty, string.Join("; ", errors.Select(e => e.GetType().Name + ": " + e.Message)));
        var stats = pool.GetStatistics();
        Assert.That((stats.SocketCheckFailures, stats.ValidationFailures), Is.EqualTo(((long)Rounds, 0L)), "the socket check found every killed connection");
    }

    [Category(DriverContractTests.Contract)]
    [Test]
    public void A_session_change_reaches_no_next_caller_and_the_reset_keeps_the_session_encrypted()
    {
        using var pool = TlsPool(o =>
        {
            o.MaxPoolSize = 1;
            o.SessionReset = SessionResetPolicy.Auto;
        }, extra: "Allow User Variables=true");
        var a = pool.Rent();
        var physical = a.Physical();
        Scalar(a, "SET @x = 'A'");
        Scalar(a, "SELECT 1");
        pool.Return(a);

        var b = pool.Rent();
        Assert.That(b.Physical(), Is.SameAs(physical), "B got A's connection");
        Assert.That(Convert.ToString(Scalar(b, "SELECT CAST(IFNULL(@x, 'none') AS CHAR)"), CultureInfo.InvariantCulture), Is.EqualTo("none"), "B sees a fresh session");
        Assert.That(Scalar(b, "SELECT DATABASE()"), Is.EqualTo(TestServer.Database));
        Assert.That(SessionStatus(b, "Ssl_cipher"), Is.Not.Empty, "still over TLS after the reset");
        pool.Return(b);
        Settled(pool);
        Assert.That(pool.GetStatistics().SessionResets, Is.EqualTo(1));
    }

    [Test]
    public void The_keepalive_alone_keeps_idle_connections_alive_past_a_short_wait_timeout()
    {
        // 3 s, not the 2 s of the plain test: MySql.Data's open over TLS under Mono takes 0.5 s and, on a
        // busy machine, now and then more than 2 s between two of its commands, which a 2 s wait_timeout ends.
        using var _ = Admin.GlobalWaitTimeout(3);
        using var pool = TlsPool();
        var held = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList();
        var ids = held.Select(ConnectionId).ToList();
        held.ForEach(c => pool.Return(c));
        Assert.That(pool.GetStatistics().KeepAliveInterval, Is.EqualTo(TimeSpan.FromSeconds(1.5)), "half of wait_timeout");

        Elapse(TimeSpan.FromSeconds(7)); // more than two wait_timeouts of idle

        Assert.That(Admin.ConnectionIds(), Is.SupersetOf(ids), "the server kept every idle connection");
        var stats = pool.GetStatistics();
        Assert.That(stats.KeepAlivePings, Is.GreaterThanOrEqualTo(6), "every idle connection, more than once");
        Assert.That(stats.Evicted, Is.Zero);
        Assert.That(Enumerable.Range(0, 3).Select(_ => Request(pool)), Has.All.Null);
        Assert.That(pool.GetStatistics().Created, Is.EqualTo(3));
    }

    /// <summary>
    /// A COM_PING written on the socket under a TLS session is no TLS record: the server drops the
    /// session (shown first, on a connection of the driver's own). So the pool's pings over TLS, which
    /// leave every session alive, went through the driver.
    /// </summary>
    [Category(DriverContractTests.Contract)]
    [Test]
    public void Pings_over_TLS_go_through_the_driver_not_on_the_wire()
    {
        // The control: a raw COM_PING on the TCP socket under a TLS connection breaks it.
        var abortedBefore = AbortedClients();
        using (var raw = OpenDriverConnection(TestServer.TlsConnectionString(Driver, extra: "Pooling=false")))
        {
            var id = ConnectionId(raw);
            var socket = Drivers.SocketAborter.Inspect(raw).Socket;
            Assert.That(socket, Is.Not.Null);
            socket!.Send([0x01, 0x00, 0x00, 0x00, 0x0e]);
            Eventually(() => !Admin.ConnectionIds().Contains(id), TimeSpan.FromSeconds(10), "the server dropped the TLS session that got a raw COM_PING");
            Eventually(() => AbortedClients() > abortedBefore, TimeSpan.FromSeconds(5), "the server counted it aborted (\"Got an error reading communication packets\")");
        }

        var aborted = AbortedClients();
        using var pool = TlsPool(o =>
        {
            o.KeepAliveInterval = TimeSpan.FromMilliseconds(400);
            o.ValidationBypassWindow = TimeSpan.FromMilliseconds(100); // shorter than the interval, as the pool requires
        });
        var held = Enumerable.Range(0, 2).Select(_ => pool.Rent()).ToList();
        var ids = held.Select(ConnectionId).ToList();
        held.ForEach(c => pool.Return(c));

        Elapse(TimeSpan.FromSeconds(2));

        var stats = pool.GetStatistics();
        Assert.That(stats.KeepAlivePings, Is.GreaterThanOrEqualTo(4), "each idle connection pinged more than once");
        Assert.That(stats.Evicted, Is.Zero, "no ping broke a session");
        Assert.That(Log.Has("WirePingGarbled"), Is.False);
        Assert.That(Admin.ConnectionIds(), Is.SupersetOf(ids), "the server kept every pinged session");
        Assert.That(AbortedClients(), Is.EqualTo(aborted), "the server aborted no session");
        using (var lease = pool.Lease())
            Assert.That(SessionStatus(lease.Connection, "Ssl_cipher"), Is.Not.Empty);
        Assert.That(pool.GetStatistics().Created, Is.EqualTo(2));
    }

    private KeepAlivePool TlsPool(Action<KeepAliveOptions>? configure = null, string? extra = null) => CreatePool(o =>
    {
        o.ConnectionString = TestServer.TlsConnectionString(Driver, extra: extra);
        configure?.Invoke(o);
    });

    /// <summary>A connection of the driver under test, opened by the driver alone (no pool).</summary>
    private DbConnection OpenDriverConnection(string connectionString)
    {
        DbConnection connection = Driver == MySqlDriver.MySqlConnector
            ? new MySqlConnector.MySqlConnection(connectionString)
            : new MySql.Data.MySqlClient.MySqlConnection(connectionString);
        try
        {
            connection.Open();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>The value of one row of <c>SHOW SESSION STATUS</c> (empty when the server shows none).</summary>
    private static string SessionStatus(DbConnection connection, string name)
    {
        using var command = connection.CreateCommand();
        command.CommandText = $"SHOW SESSION STATUS LIKE '{name}'";
        using var reader = command.ExecuteReader();
        return reader.Read() ? reader.GetString(1) : string.Empty;
    }

    /// <summary>The server's count of sessions it aborted (a client that broke the protocol among them).</summary>
    private long AbortedClients() =>
        Admin.Count("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'ABORTED_CLIENTS'");
}
