using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using NHibernate;
using NHibernate.Driver;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate.Tests;

[TestFixture]
[NonParallelizable]
public class ProviderContractTests
{
    private static Dictionary<string, string> Settings(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string>
        {
            [Environment.ConnectionString] = TestServer.ConnectionString(MySqlDriver.MySqlData),
            [Environment.ConnectionDriver] = typeof(MySqlDataDriver).AssemblyQualifiedName!,
        };
        foreach (var (key, value) in extra)
            settings[key] = value;
        return settings;
    }

    [Test]
    public void Configure_reads_the_connection_string_and_the_nhkeepalive_properties()
    {
        using var provider = new KeepAliveConnectionProvider();
        provider.Configure(Settings(("nhkeepalive.max_pool_size", "7"), ("nhkeepalive.pool_name", "orders"), ("show_sql", "true")));

        Assert.That(provider.Pool!.Name, Is.EqualTo("orders"));
        Assert.That(provider.Pool.GetStatistics().MaxPoolSize, Is.EqualTo(7));
        Assert.That(provider.Pool.DriverName, Is.EqualTo("MySql.Data"));
    }

    [Test]
    public void AppSettings_override_code_and_NHibernate_properties_override_appSettings()
    {
        var configuration = new global::NHibernate.Cfg.Configuration();
        configuration.UseKeepAlive(o => { o.MaxPoolSize = 20; o.MinIdle = 1; o.PoolName = "from code"; });
        var settings = new Dictionary<string, string>(configuration.Properties) { ["nhkeepalive.min_idle"] = "3" };
        var appSettings = new System.Collections.Specialized.NameValueCollection
        {
            ["nhkeepalive.max_pool_size"] = "30",
            ["nhkeepalive.min_idle"] = "2",
            ["unrelated"] = "x",
        };

        var options = KeepAliveOptionsRegistry.Resolve(settings, appSettings);

        Assert.That((options.PoolName, options.MaxPoolSize, options.MinIdle), Is.EqualTo(("from code", 30, 3)));
        appSettings["nhkeepalive.max_pool_sise"] = "1";
        Assert.That(() => KeepAliveOptionsRegistry.Resolve(settings, appSettings), Throws.TypeOf<KeepAliveConfigurationException>().With.Message.Contains("max_pool_sise"));
    }

    [Test]
    public void A_second_UseKeepAlive_keeps_what_the_first_set()
    {
        var configuration = new global::NHibernate.Cfg.Configuration();
        configuration.UseKeepAlive(o => o.MaxPoolSize = 20);
        configuration.UseKeepAlive(o => o.MinIdle = 2);

        var options = KeepAliveOptionsRegistry.Resolve(configuration.Properties, new System.Collections.Specialized.NameValueCollection());

        Assert.That((options.MaxPoolSize, options.MinIdle), Is.EqualTo((20, 2)));
    }

    [Test]
    public void The_stock_MySql_driver_is_replaced_by_the_one_that_protects_held_connections()
    {
        using var provider = new KeepAliveConnectionProvider();
        provider.Configure(Settings());
        Assert.That(provider.Driver, Is.TypeOf<KeepAliveMySqlDataDriver>());

        using var connector = new KeepAliveConnectionProvider();
        connector.Configure(Settings((Environment.ConnectionDriver, "NHibernate.Driver.MySqlConnector.MySqlConnectorDriver, NHibernate.Driver.MySqlConnector"),
            (Environment.ConnectionString, TestServer.ConnectionString(MySqlDriver.MySqlConnector))));
        Assert.That(connector.Driver, Is.TypeOf<KeepAliveMySqlConnectorDriver>());
        Assert.That(connector.Pool!.DriverName, Is.EqualTo("MySqlConnector"));
    }

    [TestCase("nhkeepalive.max_pool_size", "lots", "not a whole number")]
    [TestCase("nhkeepalive.keepalive_intervall", "1m", "Unknown NHKeepAlive property")]
    [TestCase("nhkeepalive.validation_timeout", "30s", "not shorter than ConnectionTimeout")]
    public void Bad_properties_are_rejected_with_a_clear_message(string key, string value, string expected)
    {
        using var provider = new KeepAliveConnectionProvider();
        var error = Assert.Throws<KeepAliveConfigurationException>(() => provider.Configure(Settings((key, value))))!;
        Assert.That(error.Message, Does.Contain(expected));
    }

    [Test]
    public void A_missing_connection_string_is_NHibernate_s_own_error()
    {
        using var provider = new KeepAliveConnectionProvider();
        var settings = Settings();
        settings.Remove(Environment.ConnectionString);
        Assert.That(() => provider.Configure(settings), Throws.TypeOf<HibernateException>().With.Message.Contains("connection string"));
    }

    [Test]
    public async Task Connections_go_back_to_the_pool_on_CloseConnection_sync_and_async()
    {
        using var provider = new KeepAliveConnectionProvider();
        provider.Configure(Settings());
        var sync = provider.GetConnection();
        var async = await provider.GetConnectionAsync(default);
        Assert.That(provider.Pool!.GetStatistics().Active, Is.EqualTo(2));
        var physical = ((KeepAliveConnection)sync).InnerConnection;

        provider.CloseConnection(sync);
        provider.CloseConnection(async);

        var stats = provider.Pool.GetStatistics();
        Assert.That((stats.Active, stats.Idle), Is.EqualTo((0, 2)));
        Assert.That(physical.State, Is.EqualTo(System.Data.ConnectionState.Open), "the physical connection is kept open for the next session");
        Assert.That(sync.State, Is.EqualTo(System.Data.ConnectionState.Closed), "the session's handle is given back");
        Assert.That(() => sync.CreateCommand().ExecuteScalar(), Throws.TypeOf<ObjectDisposedException>(), "and refuses every use");
    }

    [Test]
    public void Dispose_stops_the_pool_and_closes_its_connections()
    {
        var provider = new KeepAliveConnectionProvider();
        provider.Configure(Settings());
        var connection = provider.GetConnection();
        provider.CloseConnection(connection);

        provider.Dispose();

        Assert.That(connection.State, Is.EqualTo(System.Data.ConnectionState.Closed));
        Assert.That(() => provider.GetConnection(), Throws.TypeOf<ObjectDisposedException>());
    }
}
