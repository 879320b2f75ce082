using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using NHKeepAlive.Extensions.Hosting;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Hosting.Tests;

[TestFixture]
public sealed class ConfigurationTests
{
    private static IConfiguration Json(string json) =>
        new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();

    private static string Quoted(string text) => System.Text.Json.JsonSerializer.Serialize(text);

    [Test]
    public void Property_names_and_nhkeepalive_names_bind_with_the_core_parse_rules()
    {
        var configuration = Json($$"""
        {
          "NHKeepAlive": {
            "ConnectionString": {{Quoted(HostedPools.ConnectionString)}},
            "MaxPoolSize": 20,
            "KeepAliveInterval": "2m",
            "nhkeepalive.validation_timeout": "500ms",
            "idle_timeout": "00:05:00",
            "SessionReset": "always",
            "socket-check": "off"
          }
        }
        """);
        var options = KeepAliveConfigurationBinder.Bind(new KeepAliveOptions(), configuration.GetSection("NHKeepAlive"));
        Assert.Multiple(() =>
        {
            Assert.That(options.ConnectionString, Is.EqualTo(HostedPools.ConnectionString));
            Assert.That(options.MaxPoolSize, Is.EqualTo(20));
            Assert.That(options.KeepAliveInterval, Is.EqualTo(TimeSpan.FromMinutes(2)));
            Assert.That(options.ValidationTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(500)));
            Assert.That(options.IdleTimeout, Is.EqualTo(TimeSpan.FromMinutes(5)));
            Assert.That(options.SessionReset, Is.EqualTo(SessionResetPolicy.Always));
            Assert.That(options.SocketCheck, Is.False);
        });
    }

    [Test]
    public async Task A_host_builds_its_pool_from_the_section()
    {
        var settings = new Dictionary<string, string?>
        {
            ["NHKeepAlive:ConnectionString"] = HostedPools.ConnectionString,
            ["NHKeepAlive:MaxPoolSize"] = "7",
            ["NHKeepAlive:PoolName"] = "from-config",
            ["NHKeepAlive:ShutdownGracePeriod"] = "0",
        };
        using var host = HostedPools.Build((services, configuration) => services.AddKeepAliveDataSource(configuration.GetSection("NHKeepAlive")), settings);
        await host.StartAsync();
        var pool = host.Services.GetRequiredService<KeepAliveDataSource>().Pool;
        Assert.That(pool.Name, Is.EqualTo("from-config"));
        Assert.That(pool.GetStatistics().MaxPoolSize, Is.EqualTo(7));
        await host.StopAsync();
    }

    [Test]
    public async Task The_section_overrides_options_set_in_code()
    {
        var settings = new Dictionary<string, string?>
        {
            ["NHKeepAlive:ConnectionString"] = HostedPools.ConnectionString,
            ["NHKeepAlive:MaxPoolSize"] = "9",
        };
        using var host = HostedPools.Build(
            (services, configuration) => services.AddKeepAliveDataSource(configuration.GetSection("NHKeepAlive"), o => { o.MaxPoolSize = 3; o.ShutdownGracePeriod = TimeSpan.Zero; }),
            settings);
        await host.StartAsync();
        Assert.That(host.Services.GetRequiredService<KeepAliveDataSource>().Pool.GetStatistics().MaxPoolSize, Is.EqualTo(9));
        await host.StopAsync();
    }

    [TestCase("MaxPoolSize", "lots", "NHKeepAlive:MaxPoolSize", "not a whole number")]
    [TestCase("KeepAliveInterval", "3 fortnights", "NHKeepAlive:KeepAliveInterval", "not a duration")]
    [TestCase("nhkeepalive.session_reset", "sometimes", "NHKeepAlive:nhkeepalive.session_reset", "Use auto")]
    [TestCase("MaxPoolSize", "0", "MaxPoolSize", "between 1 and")]
    [TestCase("ValidationTimeout", "20s", "ValidationTimeout", "not shorter than ConnectionTimeout")]
    [TestCase("KeepAliveIntervall", "2m", "NHKeepAlive:KeepAliveIntervall", "Unknown NHKeepAlive option")]
    public async Task A_bad_value_stops_the_start_with_an_error_naming_the_option_and_no_password(string key, string value, string named, string says)
    {
        var settings = new Dictionary<string, string?>
        {
            ["NHKeepAlive:ConnectionString"] = HostedPools.ConnectionString,
            ["NHKeepAlive:" + key] = value,
        };
        using var host = HostedPools.Build((services, configuration) => services.AddKeepAliveDataSource(configuration.GetSection("NHKeepAlive")), settings);
        var error = Assert.ThrowsAsync<KeepAliveConfigurationException>(() => host.StartAsync());
        Assert.That(error!.Message, Does.Contain(named).And.Contain(says));
        Assert.That(error.ToString(), Does.Not.Contain(TestServer.Password));
        await Task.CompletedTask;
    }

    [Test]
    public async Task A_reload_of_the_configuration_does_not_change_the_running_pool()
    {
        var source = new Dictionary<string, string?>
        {
            ["NHKeepAlive:ConnectionString"] = HostedPools.ConnectionString,
            ["NHKeepAlive:MaxPoolSize"] = "4",
            ["NHKeepAlive:ShutdownGracePeriod"] = "0",
        };
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new Microsoft.Extensions.Hosting.HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(source);
        builder.Services.AddKeepAliveDataSource(builder.Configuration.GetSection("NHKeepAlive"));
        using var host = builder.Build();
        await host.StartAsync();
        var dataSource = host.Services.GetRequiredService<KeepAliveDataSource>();
        builder.Configuration["NHKeepAlive:MaxPoolSize"] = "40";
        Assert.That(builder.Configuration["NHKeepAlive:MaxPoolSize"], Is.EqualTo("40"));
        Assert.That(host.Services.GetRequiredService<KeepAliveDataSource>(), Is.SameAs(dataSource));
        Assert.That(dataSource.Pool.GetStatistics().MaxPoolSize, Is.EqualTo(4));
        await host.StopAsync();
    }
}
