using System;
using System.Diagnostics;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class BadInputTests(MySqlDriver driver) : IntegrationTest(driver)
{
    [Test]
    public void Wrong_credentials_fail_fast_with_a_message_that_says_what_to_fix()
    {
        using var pool = new KeepAlivePool(new KeepAliveOptions
        {
            ConnectionString = TestServer.ConnectionString(Driver).Replace(TestServer.Password, "wrong-password"),
            Driver = Driver,
        });
        var watch = Stopwatch.StartNew();

        var error = Assert.Throws<ConnectException>(() => pool.Rent())!;

        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)));
        Assert.That(error.ErrorNumber, Is.EqualTo(1045));
        Assert.That(error.Message, Does.Contain("Access denied").And.Contain("user name and password"));
        Assert.That(pool.GetStatistics().Total, Is.Zero, "the slot went back");
    }

    [Test]
    public void A_port_with_no_server_fails_fast_with_a_clear_error()
    {
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop(); // nothing listens there now
        using var pool = CreatePool(port: port);
        var watch = Stopwatch.StartNew();

        var error = Assert.Throws<ConnectException>(() => pool.Rent())!;

        TestContext.Progress.WriteLine($"{Driver}, no server on the port: {error.Message} ({watch.ElapsedMilliseconds} ms)");
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)));
        Assert.That(error.Message, Does.Contain("server is running"));
    }
}
