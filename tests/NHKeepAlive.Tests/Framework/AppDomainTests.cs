using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using NHKeepAlive.Tests.Infrastructure;
using NHKeepAlive.Tests.Integration;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Framework;

/// <summary>
/// On a real .NET Framework runtime (Mono here): settings from a configuration file, and a child
/// app domain that builds a pool and is unloaded, leaving no connection on the server and no timer.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
public class AppDomainTests(MySqlDriver driver) : IntegrationTest(driver)
{
    private static AppDomain ChildDomain(string name, string configFile) =>
        AppDomain.CreateDomain(name, null, new AppDomainSetup
        {
            ApplicationBase = AppDomain.CurrentDomain.BaseDirectory,
            ConfigurationFile = configFile,
        });

    private static T Create<T>(AppDomain domain) => (T)domain.CreateInstanceAndUnwrap(typeof(T).Assembly.FullName!, typeof(T).FullName!);

    private string WriteConfig(string appSettings)
    {
        var path = Path.Combine(Path.GetTempPath(), $"nhk-{Guid.NewGuid():N}.config");
        File.WriteAllText(path, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <connectionStrings>
                <add name="Shop" connectionString="{TestServer.ConnectionString(Driver)}" />
              </connectionStrings>
              <appSettings>
            {appSettings}
              </appSettings>
            </configuration>
            """);
        return path;
    }

    [Test]
    public void Settings_are_read_from_the_configuration_file()
    {
        var config = WriteConfig("""
                <add key="nhkeepalive.max_pool_size" value="7" />
                <add key="nhkeepalive.keepalive_interval" value="90s" />
                <add key="unrelated.setting" value="x" />
            """);
        var domain = ChildDomain("config", config);
        try
        {
            var probe = Create<ConfigProbe>(domain);

            var summary = probe.Load("Shop");

            Assert.That(summary, Is.EqualTo("max 7, keepalive 90 s, connected"));
            Assert.That(probe.Load("Nope"), Does.Contain("no connection string named 'Nope'"));
        }
        finally
        {
            AppDomain.Unload(domain);
            File.Delete(config);
        }
    }

    [Test]
    public void A_bad_setting_in_the_configuration_file_gets_the_same_clear_error()
    {
        var config = WriteConfig("""    <add key="nhkeepalive.max_pool_sise" value="7" />""");
        var domain = ChildDomain("bad-config", config);
        try
        {
            var probe = Create<ConfigProbe>(domain);

            Assert.That(probe.Load("Shop"), Does.Contain("Unknown NHKeepAlive property 'nhkeepalive.max_pool_sise'"));
        }
        finally
        {
            AppDomain.Unload(domain);
            File.Delete(config);
        }
    }

    [Test]
    public void Unloading_an_app_domain_closes_its_pool_connections_and_stops_its_timer()
    {
        var config = WriteConfig(string.Empty);
        var domain = ChildDomain("unloaded", config);
        var recorder = new TimerRecorder();
        IReadOnlyList<long> ids;
        try
        {
            var child = Create<PoolInChildDomain>(domain);
            ids = child.Start(TestServer.ConnectionString(Driver), recorder);
            Assert.That(Admin.ConnectionIds(), Is.SupersetOf(ids), "the child's connections are open");
            Assert.That(recorder.Created, Is.EqualTo(2), "the housekeeping timer and the validation watchdog's");
        }
        finally
        {
            AppDomain.Unload(domain);
            File.Delete(config);
        }

        Eventually(() => !Admin.ConnectionIds().Intersect(ids).Any(), TimeSpan.FromSeconds(5), "the server no longer sees the child's connections (idle and in use)");
        Assert.That(recorder.Disposed, Is.EqualTo(2), "the child's timers were stopped as the domain went");
    }
}

/// <summary>Runs in a child domain: options from that domain's configuration file.</summary>
public sealed class ConfigProbe : MarshalByRefObject
{
#pragma warning disable CA1822 // Called across app domains, on an instance.
    public string Load(string name)
    {
        try
        {
            var options = KeepAliveAppConfig.Load(name);
            options.Driver = MySqlDriver.MySqlData;
            using var pool = new KeepAlivePool(options);
            pool.Return(pool.Rent());
            return $"max {options.MaxPoolSize}, keepalive {options.KeepAliveInterval.TotalSeconds:0} s, connected";
        }
        catch (KeepAliveConfigurationException e)
        {
            return e.Message;
        }
    }
#pragma warning restore CA1822
}

/// <summary>Lives in the parent domain; the child's timer reports to it.</summary>
public sealed class TimerRecorder : MarshalByRefObject
{
    private int _created;
    private int _disposed;

    public int Created => _created;

    public int Disposed => _disposed;

    public void OnCreated() => Interlocked.Increment(ref _created);

    public void OnDisposed() => Interlocked.Increment(ref _disposed);
}

/// <summary>Runs in a child domain: a pool with two idle connections and one in use, never disposed by its owner.</summary>
public sealed class PoolInChildDomain : MarshalByRefObject
{
    private KeepAlivePool? _pool;
    private System.Data.Common.DbConnection? _held;

    public IReadOnlyList<long> Start(string connectionString, TimerRecorder recorder)
    {
        _pool = new KeepAlivePool(new KeepAliveOptions
        {
            ConnectionString = connectionString,
            Driver = MySqlDriver.MySqlData,
            TimeProvider = new RecordingTimeProvider(recorder),
        });
        var connections = Enumerable.Range(0, 3).Select(_ => _pool.Rent()).ToList();
        var ids = connections.Select(c => Convert.ToInt64(new MySql.Data.MySqlClient.MySqlCommand("SELECT CONNECTION_ID()", (MySql.Data.MySqlClient.MySqlConnection)c.Physical()).ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture)).ToList();
        _pool.Return(connections[0]);
        _pool.Return(connections[1]); // the third stays in use: the domain goes before its owner returns it
        _held = connections[2]; // referenced, so that it stays on loan (a dropped handle would be taken back)
        return ids;
    }

    private sealed class RecordingTimeProvider(TimerRecorder recorder) : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            recorder.OnCreated();
            return new Recorded(System.CreateTimer(callback, state, dueTime, period), recorder);
        }

        private sealed class Recorded(ITimer inner, TimerRecorder recorder) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

            public void Dispose()
            {
                recorder.OnDisposed();
                inner.Dispose();
            }

            public System.Threading.Tasks.ValueTask DisposeAsync()
            {
                Dispose();
                return default;
            }
        }
    }
}
