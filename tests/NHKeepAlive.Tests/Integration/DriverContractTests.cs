using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration;

/// <summary>
/// The bindings the pool makes to each driver's insides, as the capability record the pool logs at its first
/// connection: every one the supported driver versions have must be found. A driver upgrade that breaks a binding
/// fails here instead of silently falling back (a ping for the socket check, a reset on every return).
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
[Category("Integration")]
[Category("DriverContract")]
public class DriverContractTests(MySqlDriver driver) : IntegrationTest(driver)
{
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
