using System;
using System.Linq;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>Host selection, leaving a host and failing back, as pure rules on the pool's clock.</summary>
[TestFixture]
public class ServerHostSetTests
{
    private static ServerHostSet Three() => new([("a:3306", "Server=a"), ("b:3306", "Server=b"), ("c:3306", "Server=c")]);

    [Test]
    public void New_connections_go_to_the_first_healthy_host_in_the_order_given()
    {
        var hosts = Three();
        Assert.That(hosts.Preferred.Name, Is.EqualTo("a:3306"));

        Assert.That(hosts.MarkDown(hosts.All[0], "refuses queries", TimeSpan.FromSeconds(1)), Is.True);

        Assert.That(hosts.Preferred.Name, Is.EqualTo("b:3306"));
        Assert.That(hosts.OpenOrder().Select(h => h.Name), Is.EqualTo(new[] { "b:3306", "c:3306", "a:3306" }));
        Assert.That(hosts.MarkDown(hosts.All[0], "still refusing", TimeSpan.FromSeconds(2)), Is.False, "already left: no second eviction");
    }

    [Test]
    public void A_connection_to_a_left_host_is_unfit_and_one_to_a_later_host_gives_way_when_an_earlier_one_is_back()
    {
        var hosts = Three();
        var a = hosts.All[0];
        var b = hosts.All[1];
        var openedOnA = a.Generation;

        hosts.MarkDown(a, "read-only", TimeSpan.FromSeconds(1));
        Assert.That(hosts.Verdict(a, openedOnA)!.Value.Reason, Is.EqualTo(EvictionReason.HostUnhealthy));
        Assert.That(hosts.Verdict(b, b.Generation), Is.Null, "b is where connections go now");

        Assert.That(hosts.MarkUp(a, TimeSpan.FromSeconds(5)), Is.True);
        Assert.That(hosts.Verdict(b, b.Generation)!.Value.Reason, Is.EqualTo(EvictionReason.Failback));
        Assert.That(hosts.Verdict(a, openedOnA)!.Value.Reason, Is.EqualTo(EvictionReason.HostUnhealthy), "opened before a was left: still closed as it comes back");
        Assert.That(hosts.Verdict(a, a.Generation), Is.Null);
    }

    [Test]
    public void Left_hosts_are_probed_again_once_per_interval_on_the_pool_clock()
    {
        var hosts = Three();
        hosts.MarkDown(hosts.All[1], "not synced", TimeSpan.FromSeconds(10));

        Assert.That(hosts.DueForProbe(TimeSpan.FromSeconds(10.9), TimeSpan.FromSeconds(1)), Is.Empty);
        Assert.That(hosts.DueForProbe(TimeSpan.FromSeconds(11), TimeSpan.FromSeconds(1)).Single().Name, Is.EqualTo("b:3306"));
    }

    [Test]
    public void A_single_host_is_never_left_but_its_connections_are_renewed()
    {
        var one = new ServerHostSet([("db:3306", "Server=db")]);
        var host = one.Preferred;
        var before = host.Generation;

        Assert.That(one.MarkDown(host, "read-only", TimeSpan.Zero), Is.True);

        Assert.That(one.Preferred, Is.SameAs(host), "nowhere else to go");
        Assert.That(host.Healthy, Is.True);
        Assert.That(one.Verdict(host, before)!.Value.Reason, Is.EqualTo(EvictionReason.HostUnhealthy), "connections opened before are closed as they come back");
        Assert.That(one.Verdict(host, host.Generation), Is.Null);
    }

    [TestCase("Server=a,b:3307,c;Port=3306", "a:3306,b:3307,c:3306")]
    [TestCase("Server=a;Port=3310", "a:3310")]
    [TestCase("Server=[::1]:3307,127.0.0.2", "::1:3307,127.0.0.2:3306")]
    public void The_host_list_is_read_from_the_server_option_with_per_host_ports(string connectionString, string expected)
    {
        var adapter = Drivers.DriverAdapter.Resolve(MySqlDriver.MySqlConnector);
        var prepared = adapter.PrepareConnectionString(connectionString + ";User ID=u;Password=pw");
        Assert.That(string.Join(",", prepared.Hosts.Select(h => h.Name)), Is.EqualTo(expected));
        foreach (var (name, single) in prepared.Hosts)
        {
            Assert.That(single, Does.Not.Contain(","), "each host is opened alone");
            Assert.That(single, Does.Contain("Password=pw"));
        }
    }

    [Test]
    public void A_host_list_entry_with_a_bad_port_is_refused_when_the_pool_is_built()
    {
        Assert.That(
            () => new KeepAlivePool(new KeepAliveOptions { ConnectionString = "Server=a,b:x;User ID=u", Driver = MySqlDriver.MySqlConnector }),
            Throws.TypeOf<KeepAliveConfigurationException>().With.Message.Contains("'b:x'"));
    }

    [TestCase(1047, "refuses queries")]
    [TestCase(1290, "read-only")]
    [TestCase(1180, "could not commit")]
    public void Node_errors_are_told_apart_from_statement_errors(int number, string expected)
    {
        Assert.That(NodeHealth.Classify(DriverExceptions.MySqlConnector(number, "node error")), Does.Contain(expected));
        Assert.That(NodeHealth.Classify(DriverExceptions.MySqlData("node error", number)), Does.Contain(expected));
        Assert.That(NodeHealth.Classify(DriverExceptions.MySqlConnector(1062, "duplicate key")), Is.Null, "a statement error says nothing of the node");
    }
}
