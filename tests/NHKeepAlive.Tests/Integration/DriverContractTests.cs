using System;
using System.Linq;
using System.Reflection;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// What the pool finds inside the driver by reflection, checked quickly on the driver version this build
/// references. build/test.sh runs the <c>DriverContract</c> category (these tests and the tagged ones of
/// the other fixtures: the socket check after a KILL, session reset, transaction detection, keepalive
/// and wire pings, over TLS too) against every MySqlConnector version of its driver matrix, so that a
/// driver release that breaks a binding fails here instead of the pool silently falling back.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
[Category(Contract)]
public class DriverContractTests(MySqlDriver driver) : IntegrationTest(driver)
{
    /// <summary>The category of the driver-contract set.</summary>
    public const string Contract = "DriverContract";

    /// <summary>So that a matrix run cannot pass on the primary version by mistake (a stale build, a wrong output folder).</summary>
    [Test]
    public void The_driver_loaded_is_the_version_this_build_references()
    {
        var assembly = Driver == MySqlDriver.MySqlConnector
            ? typeof(MySqlConnector.MySqlConnection).Assembly
            : typeof(MySql.Data.MySqlClient.MySqlConnection).Assembly;
        var key = Driver == MySqlDriver.MySqlConnector ? "MySqlConnectorVersion" : "MySqlDataVersion";
        var referenced = typeof(DriverContractTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value ?? "(not recorded)";
        var loaded = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? assembly.GetName().Version!.ToString();

        TestContext.Progress.WriteLine($"{Driver}: {loaded} loaded from {assembly.Location} (the build references {referenced})");
        Assert.That(ThreeParts(loaded), Is.EqualTo(ThreeParts(referenced)), $"loaded {loaded}, referenced {referenced}");
    }

    /// <summary>"26.10.0.0", "3.0.0+95875a19" and "3.0.0" alike as 3.0.0 (informational versions differ in form between drivers).</summary>
    private static Version ThreeParts(string version)
    {
        var parsed = Version.Parse(version.Split('+', '-')[0]);
        return new Version(parsed.Major, parsed.Minor, Math.Max(parsed.Build, 0));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void The_socket_under_a_connection_is_found_and_its_protocol_judged(bool compressed)
    {
        using var pool = CreatePool(o => o.ConnectionString += compressed ? ";UseCompression=true" : string.Empty);
        using var lease = pool.Lease();

        var (socket, plain) = Drivers.SocketAborter.Inspect(lease.Connection.Physical());

        Assert.That(socket, Is.Not.Null, "the TCP socket under the driver's connection: what the socket check reads");
        Assert.That(((System.Net.IPEndPoint)socket!.RemoteEndPoint!).Port, Is.EqualTo(TestServer.Port), "the connection's own socket");
        Assert.That(plain, Is.EqualTo(!compressed), compressed ? "compression is seen: no ping on the wire" : "the plain protocol: the pool may ping on the wire");
    }

    /// <summary>Plain connections are pinged on the wire by the pool itself, compressed ones through the driver; either way the driver reads the next command's reply as if nothing had happened.</summary>
    [TestCase(false)]
    [TestCase(true)]
    public void Keepalive_pings_leave_idle_connections_alive_and_usable_by_the_driver(bool compressed)
    {
        using var pool = CreatePool(o =>
        {
            // A pool of two: a caller that comes while a keepalive ping has both connections out waits for
            // one (the ping holds its slot) instead of opening a third, so the two rented below are the two pinged.
            o.MaxPoolSize = 2;
            o.KeepAliveInterval = TimeSpan.FromMilliseconds(300);
            o.ValidationBypassWindow = TimeSpan.FromMilliseconds(100);
            o.ConnectionString += compressed ? ";UseCompression=true" : string.Empty;
        });
        var held = Enumerable.Range(0, 2).Select(_ => pool.Rent()).ToList();
        var ids = held.Select(ConnectionId).ToList();
        held.ForEach(c => pool.Return(c));

        Elapse(TimeSpan.FromSeconds(1.5));

        var stats = pool.GetStatistics();
        Assert.That(stats.KeepAlivePings, Is.GreaterThanOrEqualTo(4), "each idle connection pinged more than once");
        Assert.That(stats.Evicted, Is.Zero, "every ping was answered");
        Assert.That(Log.Has("WirePingGarbled"), Is.False, "the replies to the pool's own pings read as replies to COM_PING");
        Assert.That(Admin.ConnectionIds(), Is.SupersetOf(ids));
        var rented = Enumerable.Range(0, 2).Select(_ => pool.Rent()).ToList();
        Assert.That(rented.Select(ConnectionId), Is.EquivalentTo(ids), "the same connections, each answering its next command");
        rented.ForEach(c => pool.Return(c));
        Assert.That(pool.GetStatistics().Created, Is.EqualTo(2));
    }

    /// <summary>The capability record the pool logs at its first connection: every binding the supported versions have is found.</summary>
    [Test]
    public void The_pool_finds_every_binding_it_relies_on_and_logs_the_record_once()
    {
        using var pool = CreatePool();
        Assert.That(pool.GetStatistics().Capabilities, Is.Null, "nothing is known before the first connection");
        using (pool.Rent())
        {
        }

        using (pool.Rent())
        {
        }

        var capabilities = pool.GetStatistics().Capabilities!;
        Assert.That(capabilities, Is.Not.Null);
        TestContext.Out.WriteLine(capabilities);
        var expectedMissing = Driver == MySqlDriver.MySqlConnector ? new[] { nameof(DriverCapabilities.StatusFlags) } : [];
        Assert.That(capabilities.Missing, Is.EquivalentTo(expectedMissing), capabilities.ToString());
        Assert.That(capabilities.Driver, Is.EqualTo(Driver == MySqlDriver.MySqlData ? "MySql.Data" : "MySqlConnector"));
        Assert.That(capabilities.Version, Does.Match(@"^\d+\.\d+"));
        Assert.That(Log.Messages("DriverCapabilities"), Has.Length.EqualTo(1), "logged once, at the first connection");
        Assert.That(Log.Messages("DriverCapabilities")[0], Does.Contain(capabilities.ToString()));
    }
}
