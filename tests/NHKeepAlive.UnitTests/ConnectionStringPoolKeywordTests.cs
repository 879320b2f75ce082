using System;
using System.Linq;
using Microsoft.Extensions.Logging;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>The connection string's pool keywords (Max Pool Size, Min Pool Size, Connection Lifetime, Connection Idle Timeout) size the pool, in both drivers' spellings.</summary>
[TestFixture]
public class ConnectionStringPoolKeywordTests
{
    private const string Cs = "Server=127.0.0.1;Port=3306;User ID=u;Password=secret-pw;Database=d";

    private static PoolSettings Create(MySqlDriver driver, string keywords, Action<KeepAliveOptions>? configure = null, ILoggerFactory? log = null)
    {
        var options = new KeepAliveOptions { ConnectionString = Cs + ";" + keywords, Driver = driver, LoggerFactory = log };
        configure?.Invoke(options);
        return PoolSettings.Create(options);
    }

    [TestCase(MySqlDriver.MySqlData, "Max Pool Size=5")]
    [TestCase(MySqlDriver.MySqlData, "Maximum Pool Size=5")]
    [TestCase(MySqlDriver.MySqlData, "MaximumPoolSize=5")]
    [TestCase(MySqlDriver.MySqlData, "maxpoolsize=5")]
    [TestCase(MySqlDriver.MySqlConnector, "Max Pool Size=5")]
    [TestCase(MySqlDriver.MySqlConnector, "Maximum Pool Size=5")]
    [TestCase(MySqlDriver.MySqlConnector, "MaximumPoolSize=5")]
    [TestCase(MySqlDriver.MySqlConnector, "maxpoolsize=5")]
    public void Max_pool_size_in_any_spelling_sizes_the_pool(MySqlDriver driver, string keyword)
    {
        var settings = Create(driver, keyword);
        Assert.That(settings.Options.MaxPoolSize, Is.EqualTo(5));
        AssertRemoved(settings, "pool size");
    }

    [TestCase(MySqlDriver.MySqlData, "Min Pool Size=2")]
    [TestCase(MySqlDriver.MySqlData, "Minimum Pool Size=2")]
    [TestCase(MySqlDriver.MySqlData, "MinimumPoolSize=2")]
    [TestCase(MySqlDriver.MySqlData, "minpoolsize=2")]
    [TestCase(MySqlDriver.MySqlConnector, "Min Pool Size=2")]
    [TestCase(MySqlDriver.MySqlConnector, "Minimum Pool Size=2")]
    [TestCase(MySqlDriver.MySqlConnector, "MinimumPoolSize=2")]
    [TestCase(MySqlDriver.MySqlConnector, "minpoolsize=2")]
    public void Min_pool_size_in_any_spelling_becomes_the_minimum_idle(MySqlDriver driver, string keyword)
    {
        var settings = Create(driver, keyword);
        Assert.That(settings.Options.MinIdle, Is.EqualTo(2));
        AssertRemoved(settings, "pool size");
    }

    [TestCase(MySqlDriver.MySqlData, "Connection Lifetime=600")]
    [TestCase(MySqlDriver.MySqlData, "ConnectionLifeTime=600")]
    [TestCase(MySqlDriver.MySqlConnector, "Connection Lifetime=600")]
    [TestCase(MySqlDriver.MySqlConnector, "ConnectionLifeTime=600")]
    public void Connection_lifetime_in_seconds_becomes_the_max_lifetime(MySqlDriver driver, string keyword)
    {
        var settings = Create(driver, keyword);
        Assert.That(settings.Options.MaxLifetime, Is.EqualTo(TimeSpan.FromMinutes(10)));
        AssertRemoved(settings, "lifetime");
    }

    [TestCase(MySqlDriver.MySqlData)]
    [TestCase(MySqlDriver.MySqlConnector)]
    public void A_connection_lifetime_of_zero_means_none(MySqlDriver driver) =>
        Assert.That(Create(driver, "Connection Lifetime=0").Options.MaxLifetime, Is.EqualTo(TimeSpan.Zero));

    [TestCase("ConnectionIdleTimeout=30")]
    [TestCase("Connection Idle Timeout=30")]
    public void MySqlConnector_idle_timeout_in_seconds_becomes_the_idle_timeout(string keyword)
    {
        var settings = Create(MySqlDriver.MySqlConnector, keyword);
        Assert.That(settings.Options.IdleTimeout, Is.EqualTo(TimeSpan.FromSeconds(30)));
        AssertRemoved(settings, "idle");
    }

    [Test]
    public void MySql_Data_refuses_MySqlConnector_idle_timeout_as_its_own_driver_would()
    {
        var error = Assert.Throws<KeepAliveConfigurationException>(() => Create(MySqlDriver.MySqlData, "ConnectionIdleTimeout=30"))!;
        Assert.That(error.Message, Does.Contain("'connectionidletimeout' was refused").And.Not.Contain("secret-pw"));
    }

    [TestCase(MySqlDriver.MySqlData)]
    [TestCase(MySqlDriver.MySqlConnector)]
    public void All_four_at_once_and_the_rest_of_the_string_kept(MySqlDriver driver)
    {
        var keywords = driver == MySqlDriver.MySqlConnector
            ? "maxpoolsize=7;MinimumPoolSize=3;ConnectionLifeTime=3600;ConnectionIdleTimeout=120"
            : "maxpoolsize=7;MinimumPoolSize=3;ConnectionLifeTime=3600";
        var settings = Create(driver, keywords);
        Assert.That(settings.Options.MaxPoolSize, Is.EqualTo(7));
        Assert.That(settings.Options.MinIdle, Is.EqualTo(3));
        Assert.That(settings.Options.MaxLifetime, Is.EqualTo(TimeSpan.FromHours(1)));
        Assert.That(settings.Options.IdleTimeout, Is.EqualTo(driver == MySqlDriver.MySqlConnector ? TimeSpan.FromMinutes(2) : KeepAliveOptions.DefaultIdleTimeout));
        AssertRemoved(settings, "pool size", "lifetime", "idle");
        Assert.That(settings.ConnectionString, Does.Contain("secret-pw").And.Contain("127.0.0.1"));
        Assert.That(settings.ConnectionString, Does.Contain("Pooling=False").IgnoreCase);
    }

    [TestCase(MySqlDriver.MySqlData)]
    [TestCase(MySqlDriver.MySqlConnector)]
    public void An_explicit_option_wins_and_the_contradiction_is_logged_once_naming_both(MySqlDriver driver)
    {
        var log = new CapturingLoggerFactory();
        var settings = Create(driver, "Max Pool Size=5;Min Pool Size=1", o => o.MaxPoolSize = 10, log);

        Assert.That(settings.Options.MaxPoolSize, Is.EqualTo(10));
        Assert.That(settings.Options.MinIdle, Is.EqualTo(1), "the keyword not contradicted is taken");
        var warnings = log.Entries.Where(e => e.Level >= LogLevel.Warning).ToArray();
        Assert.That(warnings, Has.Length.EqualTo(1));
        Assert.That(warnings[0].Event.Name, Is.EqualTo("OptionOverridesConnectionString"));
        Assert.That(warnings[0].Message, Does.Contain("'Max Pool Size'").And.Contain(KeepAliveProperties.MaxPoolSize).And.Contain("10").And.Contain("5"));
        Assert.That(warnings[0].Message, Does.Not.Contain("secret-pw"));
        AssertRemoved(settings, "pool size");
    }

    [Test]
    public void An_nhkeepalive_property_wins_too_even_at_the_default_value()
    {
        var log = new CapturingLoggerFactory();
        var options = KeepAliveOptions.FromProperties([new(KeepAliveProperties.MaxPoolSize, "100"), new(KeepAliveProperties.MaxLifetime, "30m")]);
        options.ConnectionString = Cs + ";MaximumPoolSize=5;Connection Lifetime=600";
        options.Driver = MySqlDriver.MySqlConnector;
        options.LoggerFactory = log;

        var settings = PoolSettings.Create(options);

        Assert.That(settings.Options.MaxPoolSize, Is.EqualTo(100));
        Assert.That(settings.Options.MaxLifetime, Is.EqualTo(TimeSpan.FromMinutes(30)));
        Assert.That(log.Messages("OptionOverridesConnectionString"), Has.Length.EqualTo(2));
        Assert.That(options.MaxLifetime, Is.EqualTo(TimeSpan.FromMinutes(30)), "the caller's object is not changed");
    }

    [Test]
    public void An_explicit_value_equal_to_the_connection_string_logs_nothing()
    {
        var log = new CapturingLoggerFactory();
        var settings = Create(MySqlDriver.MySqlConnector, "Max Pool Size=5", o => o.MaxPoolSize = 5, log);
        Assert.That(settings.Options.MaxPoolSize, Is.EqualTo(5));
        Assert.That(log.Entries, Is.Empty);
    }

    [Test]
    public void The_callers_options_are_not_changed_by_the_connection_string()
    {
        var options = new KeepAliveOptions { ConnectionString = Cs + ";Max Pool Size=5", Driver = MySqlDriver.MySqlData };
        var settings = PoolSettings.Create(options);
        Assert.That(settings.Options.MaxPoolSize, Is.EqualTo(5));
        Assert.That(options.MaxPoolSize, Is.EqualTo(KeepAliveOptions.DefaultMaxPoolSize));
    }

    [TestCase(MySqlDriver.MySqlData, "Max Pool Size=0", "MaxPoolSize (the connection string's 'Max Pool Size') is 0")]
    [TestCase(MySqlDriver.MySqlConnector, "maxpoolsize=20000", "MaxPoolSize (the connection string's 'maxpoolsize') is 20000; it must be between 1 and 10000")]
    [TestCase(MySqlDriver.MySqlConnector, "MaximumPoolSize=4294967295", "'MaximumPoolSize'")]
    [TestCase(MySqlDriver.MySqlData, "Max Pool Size=5;Min Pool Size=6", "MinIdle (the connection string's 'Min Pool Size') is 6, more than MaxPoolSize (the connection string's 'Max Pool Size') 5")]
    [TestCase(MySqlDriver.MySqlData, "ConnectionLifeTime=4000000000", "MaxLifetime (the connection string's 'ConnectionLifeTime')")]
    [TestCase(MySqlDriver.MySqlConnector, "ConnectionIdleTimeout=3000000", "IdleTimeout (the connection string's 'ConnectionIdleTimeout')")]
    [TestCase(MySqlDriver.MySqlData, "Max Pool Size=ten", "the option 'max pool size' was refused")]
    [TestCase(MySqlDriver.MySqlConnector, "Min Pool Size=-1", "the option 'min pool size' was refused")]
    public void A_bad_keyword_value_is_rejected_naming_the_keyword_and_never_the_password(MySqlDriver driver, string keywords, string expected)
    {
        var error = Assert.Throws<KeepAliveConfigurationException>(() => Create(driver, keywords))!;
        Assert.That(error.Message, Does.Contain(expected));
        Assert.That(error.Message, Does.Not.Contain("secret-pw"));
    }

    [TestCase(MySqlDriver.MySqlData)]
    [TestCase(MySqlDriver.MySqlConnector)]
    public void A_lifetime_from_the_string_shorter_than_the_default_keepalive_shortens_the_keepalive_instead_of_refusing_the_string(MySqlDriver driver)
    {
        var settings = Create(driver, "Connection Lifetime=60");
        Assert.That(settings.Options.MaxLifetime, Is.EqualTo(TimeSpan.FromSeconds(60)));
        Assert.That(settings.Options.KeepAliveInterval, Is.EqualTo(TimeSpan.FromSeconds(30)));
    }

    [Test]
    public void A_lifetime_from_the_string_shorter_than_an_explicit_keepalive_is_still_refused_naming_both()
    {
        var options = new KeepAliveOptions { ConnectionString = Cs + ";Connection Lifetime=60", Driver = MySqlDriver.MySqlConnector, KeepAliveInterval = TimeSpan.FromMinutes(2) };
        var error = Assert.Throws<KeepAliveConfigurationException>(() => PoolSettings.Create(options))!;
        Assert.That(error.Message, Does.Contain("MaxLifetime (the connection string's 'Connection Lifetime') is 60 s, not longer than KeepAliveInterval (nhkeepalive.keepalive_interval)"));
    }

    [Test]
    public void A_string_without_pool_keywords_leaves_the_defaults()
    {
        var settings = Create(MySqlDriver.MySqlConnector, "SslMode=Disabled");
        Assert.That(settings.Options.MaxPoolSize, Is.EqualTo(KeepAliveOptions.DefaultMaxPoolSize));
        Assert.That(settings.Options.MinIdle, Is.Zero);
        Assert.That(settings.Options.MaxLifetime, Is.EqualTo(KeepAliveOptions.DefaultMaxLifetime));
        Assert.That(settings.Options.IdleTimeout, Is.EqualTo(KeepAliveOptions.DefaultIdleTimeout));
    }

    [Test]
    public void A_host_list_keeps_the_keywords_out_of_every_host_string()
    {
        var options = new KeepAliveOptions { ConnectionString = "Server=a,b:3307;User ID=u;Password=secret-pw;Max Pool Size=4", Driver = MySqlDriver.MySqlConnector };
        var settings = PoolSettings.Create(options);
        Assert.That(settings.Options.MaxPoolSize, Is.EqualTo(4));
        Assert.That(settings.Hosts, Has.Count.EqualTo(2));
        foreach (var (_, connectionString) in settings.Hosts)
            Assert.That(connectionString, Does.Not.Contain("Pool Size").IgnoreCase);
    }

    [TestCase(MySqlDriver.MySqlData)]
    [TestCase(MySqlDriver.MySqlConnector)]
    public void The_string_is_read_once_into_the_server_key_the_tenant_key_and_the_enlistment(MySqlDriver driver)
    {
        PoolSettings For(string cs) => PoolSettings.Create(new KeepAliveOptions { ConnectionString = cs, Driver = driver });
        var tenantA = For("Server=db1;Port=3307;User ID=app;Password=secret-pw;Database=tenant_a");
        var tenantB = For("server=db1;port=3307;uid=app;pwd=secret-pw;Initial Catalog=tenant_b");
        var otherUser = For("Server=db1;Port=3307;User ID=report;Password=secret-pw;Database=tenant_a");

        Assert.That(tenantA.ServerKey, Is.EqualTo(tenantB.ServerKey), "the same server and user, in other spellings");
        Assert.That(tenantA.ServerKey, Is.Not.EqualTo(otherUser.ServerKey));
        Assert.That(tenantA.WithoutDatabase, Is.EqualTo(tenantB.WithoutDatabase), "tenants differ by their database alone");
        foreach (var text in new[] { tenantA.ServerKey, tenantA.WithoutDatabase })
        {
            Assert.That(text, Does.Not.Contain("secret-pw"));
            Assert.That(text, Does.Not.Contain("tenant_a"));
        }

        Assert.That(tenantA.AutoEnlist, Is.True, "a string that does not say enlists, as the drivers do");
        Assert.That(For("Server=db1;User ID=app;Auto Enlist=false").AutoEnlist, Is.False);
        Assert.That(For("Server=db1;User ID=app;AutoEnlist=False").AutoEnlist, Is.False);
        Assert.That(tenantA.ConnectionString, Does.Match("(?i)auto ?enlist=false"), "the pool's own connections never enlist, whatever the caller's string says");
    }

    private static void AssertRemoved(PoolSettings settings, params string[] fragments)
    {
        foreach (var fragment in fragments)
        {
            foreach (var text in new[] { settings.ConnectionString, settings.PublicConnectionString })
            {
                Assert.That(text.Replace(" ", string.Empty), Does.Not.Contain(fragment.Replace(" ", string.Empty)).IgnoreCase, text);
                Assert.That(text, Does.Not.Contain("lifetime").IgnoreCase, text);
            }
        }
    }
}
