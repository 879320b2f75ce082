using System;
using System.Collections.Generic;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

[TestFixture]
public class OptionsTests
{
    private const string Cs = "Server=127.0.0.1;Port=3306;User ID=u;Password=secret-pw;Database=d";

    private static KeepAliveOptions Valid() => new() { ConnectionString = Cs, Driver = MySqlDriver.MySqlData };

    [Test]
    public void The_defaults_are_valid_and_safe()
    {
        using var pool = new KeepAlivePool(Valid());
        var o = new KeepAliveOptions();
        Assert.That(o.ValidationBypassWindow, Is.EqualTo(TimeSpan.FromMilliseconds(500)));
        Assert.That(o.KeepAliveInterval, Is.LessThan(TimeSpan.FromMinutes(4)), "below the shortest common middlebox idle timeout (Azure LB, 4 min)");
        Assert.That(o.MaxLifetime, Is.LessThan(TimeSpan.FromHours(8)), "below MySQL's default wait_timeout");
        Assert.That(o.ValidationTimeout, Is.LessThan(o.ConnectionTimeout));
        Assert.That(pool.Name, Is.EqualTo("127.0.0.1:3306/d"));
        Assert.That(pool.DriverName, Is.EqualTo("MySql.Data"));
    }

    private static IEnumerable<TestCaseData> InvalidOptions()
    {
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ConnectionString = " "), "No connection string").SetName("A missing connection string");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.MaxPoolSize = 0), "nhkeepalive.max_pool_size").SetName("A max pool size below one");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.MinIdle = -1), "nhkeepalive.min_idle").SetName("A negative minimum idle");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => { o.MaxPoolSize = 5; o.MinIdle = 6; }), "lower MinIdle or raise MaxPoolSize").SetName("A minimum idle above the max pool size");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ConnectionTimeout = TimeSpan.Zero), "nhkeepalive.connection_timeout").SetName("A zero connection timeout");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ValidationTimeout = TimeSpan.FromSeconds(-1)), "nhkeepalive.validation_timeout").SetName("A negative validation timeout");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ValidationTimeout = TimeSpan.FromSeconds(20)), "not shorter than ConnectionTimeout").SetName("A validation timeout not shorter than the connection timeout");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => { o.MaxLifetime = TimeSpan.FromMinutes(1); o.KeepAliveInterval = TimeSpan.FromMinutes(2); }), "retired before their first keepalive").SetName("A lifetime shorter than the keepalive interval");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ValidationBypassWindow = TimeSpan.FromMinutes(5)), "not shorter than KeepAliveInterval").SetName("A bypass window longer than the keepalive interval");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.IdleTimeout = TimeSpan.FromSeconds(-5)), "nhkeepalive.idle_timeout").SetName("A negative idle timeout");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ValidationQuery = "  "), "leave it null").SetName("A blank validation query");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ConnectionString = "Server=x;Frobnicate=yes"), "the option 'frobnicate' was refused").SetName("An unknown connection string keyword");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ConnectionString = "Server=x;Port=notanumber"), "the option 'port' was refused").SetName("A connection string port that is not a number");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.MaxLifetime = TimeSpan.MaxValue), "nhkeepalive.max_lifetime").SetName("A max lifetime that would overflow");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => { o.ConnectionTimeout = TimeSpan.FromDays(60); o.ValidationTimeout = TimeSpan.FromDays(30); }), "nhkeepalive.connection_timeout").SetName("A 60-day connection timeout");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ValidationTimeout = TimeSpan.FromDays(30)), "nhkeepalive.validation_timeout").SetName("A 30-day validation timeout");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.ShutdownGracePeriod = TimeSpan.FromDays(2)), "nhkeepalive.shutdown_grace_period").SetName("A two-day shutdown grace period");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.MaxPoolSize = int.MaxValue), "nhkeepalive.max_pool_size").SetName("A max pool size no server could serve");
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => o.SessionReset = (SessionResetPolicy)7), "nhkeepalive.session_reset").SetName("An undefined session reset policy");
#if NET
        yield return new TestCaseData((Action<KeepAliveOptions>)(o => { o.Driver = MySqlDriver.MySqlData; o.ConnectionString = "Server=x;Pipe=mypipe;Password=hunter2"; }), "the option 'pipe' was refused").SetName("A named pipe on a platform without them");
#endif
    }

    [Test]
    public void A_refused_connection_string_never_shows_its_password()
    {
        var error = Assert.Throws<KeepAliveConfigurationException>(() => new KeepAlivePool(new KeepAliveOptions { ConnectionString = "Server=x;Password=hunter2;Port=notanumber" }))!;
        Assert.That(error.Message, Does.Not.Contain("hunter2").And.Contain("'port'"));
    }

    [TestCase("mysql.data", MySqlDriver.MySqlData)]
    [TestCase("MySql.Data", MySqlDriver.MySqlData)]
    [TestCase("mysqldata", MySqlDriver.MySqlData)]
    [TestCase("mysql-data", MySqlDriver.MySqlData)]
    [TestCase("mysqlconnector", MySqlDriver.MySqlConnector)]
    [TestCase("MySqlConnector", MySqlDriver.MySqlConnector)]
    [TestCase("mysql-connector", MySqlDriver.MySqlConnector)]
    [TestCase("mysql_connector", MySqlDriver.MySqlConnector)]
    [TestCase("auto", MySqlDriver.Auto)]
    [TestCase("", MySqlDriver.Auto)]
    public void Every_spelling_of_a_driver_means_the_same_driver_everywhere(string text, MySqlDriver expected)
    {
        Assert.That(MySqlDriverChoice.Parse(text), Is.EqualTo(expected));
        Assert.That(KeepAliveOptions.FromProperties([new("nhkeepalive.driver", text)]).Driver, Is.EqualTo(expected));
        var appSettings = new System.Collections.Specialized.NameValueCollection { ["nhkeepalive.driver"] = text };
        Assert.That(KeepAliveAppConfig.ApplyAppSettings(new KeepAliveOptions(), appSettings).Driver, Is.EqualTo(expected));
    }

    [Test]
    public void Auto_resolves_to_MySql_Data_when_the_application_references_it()
    {
        Assert.That(MySqlDriverChoice.Resolve(MySqlDriver.Auto), Is.EqualTo(MySqlDriver.MySqlData));
        Assert.That(MySqlDriverChoice.Resolve(MySqlDriver.MySqlConnector), Is.EqualTo(MySqlDriver.MySqlConnector));
        Assert.That(() => MySqlDriverChoice.Parse("postgres"), Throws.TypeOf<KeepAliveConfigurationException>().With.Message.Contains("mysqlconnector"));
    }

    [TestCaseSource(nameof(InvalidOptions))]
    public void Invalid_options_are_rejected_when_the_pool_is_built_with_a_message_that_says_what_to_fix(Action<KeepAliveOptions> change, string expected)
    {
        var options = Valid();
        change(options);

        var error = Assert.Throws<KeepAliveConfigurationException>(() => new KeepAlivePool(options).Dispose())!;

        Assert.That(error.Message, Does.Contain(expected));
        Assert.That(error.Message, Does.Not.Contain("secret-pw"));
    }

    [Test]
    public void Properties_are_read_with_units_and_other_prefixes_are_ignored()
    {
        var options = KeepAliveOptions.FromProperties(new Dictionary<string, string>
        {
            ["connection.provider"] = "whatever NHibernate has",
            ["nhkeepalive.max_pool_size"] = "25",
            ["nhkeepalive.min_idle"] = "2",
            ["NHKeepAlive.Validation_Timeout"] = "1500ms",
            ["nhkeepalive.validation_bypass_window"] = "0.25s",
            ["nhkeepalive.keepalive_interval"] = "3m",
            ["nhkeepalive.max_lifetime"] = "1h",
            ["nhkeepalive.idle_timeout"] = "00:05:00",
            ["nhkeepalive.connection_timeout"] = "20",
            ["nhkeepalive.leak_detection_threshold"] = "30s",
            ["nhkeepalive.driver"] = "MySqlConnector",
            ["nhkeepalive.validation_query"] = "DO 1",
            ["nhkeepalive.pool_name"] = "orders",
        });

        Assert.That(options.MaxPoolSize, Is.EqualTo(25));
        Assert.That(options.MinIdle, Is.EqualTo(2));
        Assert.That(options.ValidationTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(1500)));
        Assert.That(options.ValidationBypassWindow, Is.EqualTo(TimeSpan.FromMilliseconds(250)));
        Assert.That(options.KeepAliveInterval, Is.EqualTo(TimeSpan.FromMinutes(3)));
        Assert.That(options.MaxLifetime, Is.EqualTo(TimeSpan.FromHours(1)));
        Assert.That(options.IdleTimeout, Is.EqualTo(TimeSpan.FromMinutes(5)));
        Assert.That(options.ConnectionTimeout, Is.EqualTo(TimeSpan.FromSeconds(20)));
        Assert.That(options.LeakDetectionThreshold, Is.EqualTo(TimeSpan.FromSeconds(30)));
        Assert.That(options.Driver, Is.EqualTo(MySqlDriver.MySqlConnector));
        Assert.That(options.ValidationQuery, Is.EqualTo("DO 1"));
        Assert.That(options.PoolName, Is.EqualTo("orders"));
    }

    [Test]
    public void An_unknown_nhkeepalive_property_is_rejected_with_the_list_of_known_ones()
    {
        var error = Assert.Throws<KeepAliveConfigurationException>(() =>
            KeepAliveOptions.FromProperties([new("nhkeepalive.keepalive_intervall", "1m")]))!;
        Assert.That(error.Message, Does.Contain("nhkeepalive.keepalive_intervall").And.Contain("nhkeepalive.keepalive_interval"));
    }

    [TestCase("nhkeepalive.max_pool_size", "ten", "not a whole number")]
    [TestCase("nhkeepalive.validation_timeout", "3 fortnights", "not a duration")]
    [TestCase("nhkeepalive.idle_timeout", "-5s", "not a duration")]
    [TestCase("nhkeepalive.driver", "odbc", "auto, mysql.data or mysqlconnector")]
    public void A_property_value_that_does_not_parse_is_rejected(string key, string value, string expected)
    {
        var error = Assert.Throws<KeepAliveConfigurationException>(() => KeepAliveOptions.FromProperties([new(key, value)]))!;
        Assert.That(error.Message, Does.Contain(key).And.Contain(value).And.Contain(expected));
    }

    [Test]
    public void The_driver_pooling_is_turned_off_whatever_the_connection_string_says()
    {
        using var pool = new KeepAlivePool(new KeepAliveOptions { ConnectionString = Cs + ";Pooling=true", Driver = MySqlDriver.MySqlConnector });
        var settings = PoolSettings.Create(new KeepAliveOptions { ConnectionString = Cs + ";Pooling=true", Driver = MySqlDriver.MySqlConnector });
        Assert.That(settings.ConnectionString, Does.Contain("Pooling=False"));
        Assert.That(settings.ConnectionString, Does.Contain("secret-pw"), "the pool keeps the password: drivers drop it from an open connection's string");
    }
}
