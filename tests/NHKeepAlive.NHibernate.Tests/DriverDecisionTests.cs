using System.Collections.Specialized;
using FluentNHibernate.Cfg;
using FluentNHibernate.Cfg.Db;
using NHibernate;
using NHibernate.Driver;
using NHibernate.Engine;
using NHKeepAlive.FluentNHibernate;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate.Tests;

/// <summary>
/// One decision of the driver: whatever the spelling and wherever it is set, the NHibernate driver
/// installed and the driver of the pool agree (issue 13, item 8).
/// </summary>
[TestFixture]
[NonParallelizable]
public class DriverDecisionTests
{
    private const string StockDriver = "NHibernate.Driver.MySqlDataDriver";

    // Spellings: MySqlDriverChoice.Resolve(Auto) is MySql.Data here, where both drivers are referenced.
    [TestCase("mysql.data", MySqlDriver.MySqlData)]
    [TestCase("MySqlData", MySqlDriver.MySqlData)]
    [TestCase("mysql-data", MySqlDriver.MySqlData)]
    [TestCase("mysqlconnector", MySqlDriver.MySqlConnector)]
    [TestCase("MySqlConnector", MySqlDriver.MySqlConnector)]
    [TestCase("mysql-connector", MySqlDriver.MySqlConnector)]
    [TestCase("mysql_connector", MySqlDriver.MySqlConnector)]
    [TestCase("auto", MySqlDriver.MySqlData)]
    [TestCase("", MySqlDriver.MySqlData)]
    public void A_spelling_as_an_NHibernate_property_without_driver_class(string spelling, MySqlDriver expected)
    {
        var configuration = BareConfiguration(expected);
        configuration.SetProperty(KeepAliveProperties.Driver, spelling);

        using var factory = configuration.BuildSessionFactory();

        AssertAgree(factory, expected);
    }

    [TestCase("mysql.data", MySqlDriver.MySqlData)]
    [TestCase("MySqlData", MySqlDriver.MySqlData)]
    [TestCase("mysql-data", MySqlDriver.MySqlData)]
    [TestCase("mysqlconnector", MySqlDriver.MySqlConnector)]
    [TestCase("MySqlConnector", MySqlDriver.MySqlConnector)]
    [TestCase("mysql-connector", MySqlDriver.MySqlConnector)]
    [TestCase("mysql_connector", MySqlDriver.MySqlConnector)]
    [TestCase("auto", MySqlDriver.MySqlData)]
    [TestCase("", MySqlDriver.MySqlData)]
    public void A_spelling_as_an_NHibernate_property_over_the_stock_driver_class(string spelling, MySqlDriver expected)
    {
        var configuration = BareConfiguration(expected);
        configuration.SetProperty(Environment.ConnectionDriver, typeof(MySqlDataDriver).AssemblyQualifiedName);
        configuration.SetProperty(KeepAliveProperties.Driver, spelling);

        using var factory = configuration.BuildSessionFactory();

        AssertAgree(factory, expected);
    }

    [TestCase("mysql.data", MySqlDriver.MySqlData)]
    [TestCase("MySqlData", MySqlDriver.MySqlData)]
    [TestCase("mysql-data", MySqlDriver.MySqlData)]
    [TestCase("mysqlconnector", MySqlDriver.MySqlConnector)]
    [TestCase("MySqlConnector", MySqlDriver.MySqlConnector)]
    [TestCase("mysql-connector", MySqlDriver.MySqlConnector)]
    [TestCase("mysql_connector", MySqlDriver.MySqlConnector)]
    [TestCase("auto", MySqlDriver.MySqlData)]
    [TestCase("", MySqlDriver.MySqlData)]
    public void A_spelling_in_appSettings(string spelling, MySqlDriver expected)
    {
        var configuration = BareConfiguration(expected);
        using var provider = new KeepAliveConnectionProvider(new NameValueCollection { [KeepAliveProperties.Driver] = spelling });

        provider.Configure(configuration.GetDerivedProperties()); // the settings NHibernate hands a provider: the dialect's defaults merged in

        AssertAgree(provider, expected);
    }

    [TestCase(MySqlDriver.MySqlData)]
    [TestCase(MySqlDriver.MySqlConnector)]
    [TestCase(MySqlDriver.Auto)]
    public void Options_in_code(MySqlDriver requested)
    {
        var expected = requested == MySqlDriver.Auto ? MySqlDriver.MySqlData : requested;

        using var factory = BareConfiguration(expected).UseKeepAlive(o => o.Driver = requested).BuildSessionFactory();

        AssertAgree(factory, expected);
    }

    [Test]
    public void AppSettings_override_code_and_an_NHibernate_property_overrides_appSettings()
    {
        var configuration = BareConfiguration(MySqlDriver.MySqlConnector).UseKeepAlive(o => o.Driver = MySqlDriver.MySqlData);
        using (var provider = new KeepAliveConnectionProvider(new NameValueCollection { [KeepAliveProperties.Driver] = "mysql-connector" }))
        {
            provider.Configure(configuration.GetDerivedProperties());
            AssertAgree(provider, MySqlDriver.MySqlConnector);
        }

        configuration.SetProperty(KeepAliveProperties.Driver, "MySql.Data");
        configuration.SetProperty(Environment.ConnectionString, TestServer.ConnectionString(MySqlDriver.MySqlData)); // the two drivers spell "no TLS" differently
        using (var provider = new KeepAliveConnectionProvider(new NameValueCollection { [KeepAliveProperties.Driver] = "mysql-connector" }))
        {
            provider.Configure(configuration.GetDerivedProperties());
            AssertAgree(provider, MySqlDriver.MySqlData);
        }
    }

    [TestCase(MySqlDriver.MySqlData)]
    [TestCase(MySqlDriver.MySqlConnector)]
    public void Fluent_MySQLConfiguration_with_the_driver_in_KeepAlive(MySqlDriver requested)
    {
        // MySQLConfiguration.Standard sets NHibernate's stock MySqlDataDriver by itself.
        using var factory = Fluently.Configure()
            .Database(MySQLConfiguration.Standard.ConnectionString(TestServer.ConnectionString(requested)))
            .ExposeConfiguration(c => c.SetProperty(Environment.Hbm2ddlKeyWords, "none"))
            .KeepAlive(o => o.Driver = requested)
            .BuildSessionFactory();

        AssertAgree(factory, requested);
    }

    [TestCase("NHKeepAlive.NHibernate.KeepAliveMySqlConnectorDriver, NHKeepAlive.NHibernate", MySqlDriver.MySqlConnector)]
    [TestCase("NHibernate.Driver.MySqlConnector.MySqlConnectorDriver, NHibernate.Driver.MySqlConnector", MySqlDriver.MySqlConnector)]
    [TestCase("NHKeepAlive.NHibernate.KeepAliveMySqlDataDriver, NHKeepAlive.NHibernate", MySqlDriver.MySqlData)]
    [TestCase(StockDriver, MySqlDriver.MySqlData)]
    public void Without_nhkeepalive_driver_the_driver_class_decides(string driverClass, MySqlDriver expected)
    {
        var configuration = BareConfiguration(expected);
        configuration.SetProperty(Environment.ConnectionDriver, driverClass);

        using var factory = configuration.BuildSessionFactory();

        AssertAgree(factory, expected);
    }

    [TestCase("NHKeepAlive.NHibernate.KeepAliveMySqlDataDriver, NHKeepAlive.NHibernate", "mysqlconnector")]
    [TestCase("NHibernate.Driver.MySqlConnector.MySqlConnectorDriver, NHibernate.Driver.MySqlConnector", "mysql.data")]
    [TestCase("NHKeepAlive.NHibernate.KeepAliveMySqlConnectorDriver, NHKeepAlive.NHibernate", "MySql.Data")]
    public void A_driver_class_that_contradicts_nhkeepalive_driver_is_a_configuration_error(string driverClass, string wanted)
    {
        var configuration = BareConfiguration(MySqlDriver.MySqlData);
        configuration.SetProperty(Environment.ConnectionDriver, driverClass);
        configuration.SetProperty(KeepAliveProperties.Driver, wanted);
        using var provider = new KeepAliveConnectionProvider();

        var error = Assert.Throws<KeepAliveConfigurationException>(() => provider.Configure(configuration.GetDerivedProperties()))!;

        Assert.That(error.Message, Does.Contain(Environment.ConnectionDriver).And.Contain(KeepAliveProperties.Driver).And.Contain(driverClass));
    }

    [Test]
    public void A_misspelt_driver_is_a_configuration_error_naming_the_setting()
    {
        var configuration = BareConfiguration(MySqlDriver.MySqlData);
        configuration.SetProperty(KeepAliveProperties.Driver, "mysql-conector");
        using var provider = new KeepAliveConnectionProvider();

        Assert.That(() => provider.Configure(configuration.GetDerivedProperties()),
            Throws.TypeOf<KeepAliveConfigurationException>().With.Message.Contains(KeepAliveProperties.Driver).And.Message.Contains("mysql-conector"));
    }

    [Test]
    public void A_driver_class_of_the_application_is_kept_and_the_pool_follows_it()
    {
        var configuration = BareConfiguration(MySqlDriver.MySqlConnector);
        configuration.SetProperty(Environment.ConnectionDriver, typeof(ApplicationConnectorDriver).AssemblyQualifiedName);

        using var factory = configuration.BuildSessionFactory();

        Assert.That(Provider(factory).Driver, Is.TypeOf<ApplicationConnectorDriver>());
        Assert.That(Provider(factory).Pool!.DriverName, Is.EqualTo("MySqlConnector"));
    }

    /// <summary>The bug of issue 13 item 8: no driver_class, nhkeepalive.driver=mysqlconnector; every unit of work failed with InvalidCastException.</summary>
    [Test]
    public void No_driver_class_and_mysqlconnector_runs_a_real_unit_of_work()
    {
        var configuration = BareConfiguration(MySqlDriver.MySqlConnector);
        configuration.SetProperty(KeepAliveProperties.Driver, "mysqlconnector");
        configuration.AddMapping(Mappings.Notes());
        new global::NHibernate.Tool.hbm2ddl.SchemaExport(configuration).Create(useStdOut: false, execute: true);
        using var factory = configuration.BuildSessionFactory();

        int id;
        using (var session = factory.OpenSession())
        using (var transaction = session.BeginTransaction())
        {
            var note = new Note { Text = "connector" };
            session.Save(note);
            transaction.Commit();
            id = note.Id;
        }

        using (var session = factory.OpenSession())
            Assert.That(session.Get<Note>(id)?.Text, Is.EqualTo("connector"));
        AssertAgree(factory, MySqlDriver.MySqlConnector);
        using var admin = new ServerAdmin();
        PoolAccounting.AssertPoolMatchesServer(admin, Provider(factory).Pool!);
    }

    /// <summary>The provider alone, as hibernate.cfg.xml would name it: no connection.driver_class.</summary>
    private static global::NHibernate.Cfg.Configuration BareConfiguration(MySqlDriver driver)
    {
        var configuration = new global::NHibernate.Cfg.Configuration();
        configuration.SetProperty(Environment.ConnectionProvider, KeepAliveConfiguration.ProviderTypeName);
        configuration.SetProperty(Environment.ConnectionString, TestServer.ConnectionString(driver));
        configuration.SetProperty(Environment.Dialect, typeof(global::NHibernate.Dialect.MySQL57Dialect).AssemblyQualifiedName);
        configuration.SetProperty(Environment.Hbm2ddlKeyWords, "none");
        return configuration;
    }

    private static KeepAliveConnectionProvider Provider(ISessionFactory factory) =>
        (KeepAliveConnectionProvider)((ISessionFactoryImplementor)factory).ConnectionProvider;

    private static void AssertAgree(ISessionFactory factory, MySqlDriver expected) => AssertAgree(Provider(factory), expected);

    private static void AssertAgree(KeepAliveConnectionProvider provider, MySqlDriver expected)
    {
        var installed = provider.Driver switch
        {
            KeepAliveMySqlConnectorDriver => MySqlDriver.MySqlConnector,
            KeepAliveMySqlDataDriver => MySqlDriver.MySqlData,
            var other => Fail(other),
        };
        var pool = provider.Pool!.DriverName switch
        {
            "MySqlConnector" => MySqlDriver.MySqlConnector,
            "MySql.Data" => MySqlDriver.MySqlData,
            var other => Fail(other),
        };
        Assert.That((installed, pool), Is.EqualTo((expected, expected)), "NHibernate driver and pool driver");
    }

    private static MySqlDriver Fail(object other)
    {
        Assert.Fail($"unexpected driver {other}");
        return MySqlDriver.Auto;
    }
}

/// <summary>A driver of the application's own, deriving from NHKeepAlive's.</summary>
public class ApplicationConnectorDriver : KeepAliveMySqlConnectorDriver
{
}

