using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using FluentNHibernate.Cfg;
using FluentNHibernate.Cfg.Db;
using NHibernate;
using NHibernate.Engine;
using NHibernate.Exceptions;
using NHKeepAlive.FluentNHibernate;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate.Tests;

/// <summary>
/// Errors a unit of work meets reach the pool by themselves (NHKeepAlive's <c>sql_exception_converter</c>):
/// a read-only error (1290) closes that connection and its idle siblings at once; a duplicate key closes
/// nothing; the exceptions the application sees are NHibernate's own.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class ErrorReportingTests(MySqlDriver driver) : NHibernateTest(driver)
{
    // The test user has every privilege, READ_ONLY ADMIN included, so read_only=1 does not stop it:
    // the factory under test logs in as a user with data privileges only, as an application does.
    private const string LimitedUser = "nhk_nh_limited";
    private const string LimitedPassword = "nhk-limited-pw";
    private const int Siblings = 3;

    [TestCase(false)]
    [TestCase(true)]
    public async Task A_read_only_error_in_a_unit_of_work_closes_that_connection_and_its_idle_siblings_at_once(bool async)
    {
        using var user = LimitedUserScope();
        var log = new CapturingLoggerFactory();
        using var factory = LimitedConfiguration().UseKeepAlive(o => o.LoggerFactory = log).BuildSessionFactory();
        var pool = PoolOf(factory);
        Warm(factory, Siblings);
        Assert.That(pool.GetStatistics().Idle, Is.EqualTo(Siblings));

        using (ReadOnlyServer())
        {
            using (var session = factory.OpenSession())
            using (var transaction = session.BeginTransaction())
            {
                var error = async
                    ? Assert.CatchAsync(async () => await session.SaveAsync(new Note { Text = "read-only" }))
                    : Assert.Catch(() => session.Save(new Note { Text = "read-only" }));

                Assert.That(error, Is.TypeOf<GenericADOException>(), "NHibernate's own conversion");
                Assert.That(ServerErrors.Number(error), Is.EqualTo(1290));
                var during = pool.GetStatistics();
                Assert.That((during.Active, during.Idle), Is.EqualTo((1, 0)), "the idle siblings were closed as soon as the error was converted, before the session gave its connection back");
                Assert.That(Evictions(log, EvictionReason.HostUnhealthy), Is.EqualTo(Siblings - 1));
            }

            var after = pool.GetStatistics();
            Assert.That(after.Total, Is.Zero, "the connection that met the error was closed when the session gave it back");
            Assert.That(Evictions(log, EvictionReason.HostUnhealthy), Is.EqualTo(Siblings), string.Join("\n", log.Messages("ConnectionEvicted")));
            Assert.That(WaitForLimitedConnections(n => n == 0), Is.True, "the server no longer shows them");
        }

        // One host alone is never left: once writable again, the next unit of work runs on a new connection.
        Save(factory, "writable again");
        Assert.That(_admin.Count("SELECT COUNT(*) FROM nh_note WHERE Text = 'writable again'"), Is.EqualTo(1));
    }

    [Test]
    public void With_a_converter_of_the_application_the_error_does_not_reach_the_pool()
    {
        using var user = LimitedUserScope();
        var log = new CapturingLoggerFactory();
        var configuration = LimitedConfiguration();
        configuration.SetProperty(Environment.SqlExceptionConverter, typeof(SQLStateConverter).AssemblyQualifiedName);
        using var factory = configuration.UseKeepAlive(o => o.LoggerFactory = log).BuildSessionFactory();
        var pool = PoolOf(factory);
        Assert.That(((ISessionFactoryImplementor)factory).SQLExceptionConverter, Is.TypeOf<SQLStateConverter>(), "a converter the application names is kept");
        Warm(factory, Siblings);

        using (ReadOnlyServer())
        {
            using (var session = factory.OpenSession())
            using (var transaction = session.BeginTransaction())
            {
                var error = Assert.Catch(() => session.Save(new Note { Text = "read-only" }));
                Assert.That(ServerErrors.Number(error), Is.EqualTo(1290));
                Assert.That(pool.GetStatistics().Idle, Is.EqualTo(Siblings - 1), "nothing told the pool: the siblings stay");
            }

            Assert.That(pool.GetStatistics().Total, Is.EqualTo(Siblings), "and the connection went back to the idle list");
            Assert.That(Evictions(log, EvictionReason.HostUnhealthy), Is.Zero);
        }
    }

    [Test]
    public void A_duplicate_key_error_closes_nothing()
    {
        var log = new CapturingLoggerFactory();
        using var factory = Mappings.Configuration(Driver).UseKeepAlive(o => o.LoggerFactory = log).BuildSessionFactory();
        var pool = PoolOf(factory);
        var id = Save(factory, "original");
        Warm(factory, 2);
        MySql.Data.MySqlClient.MySqlConnection.ClearAllPools(); // the schema export's connections are not the pool's
        MySqlConnector.MySqlConnection.ClearAllPools();
        Assert.That(_admin.WaitForConnectionCount(n => n == 2, TimeSpan.FromSeconds(10)), Is.True, "the server shows the pool's two connections");
        var threads = _admin.ConnectionIds().OrderBy(t => t).ToList();
        Assert.That(threads, Has.Count.EqualTo(2));

        using (var session = factory.OpenSession())
        using (var transaction = session.BeginTransaction())
        {
            var error = Assert.Catch(() => session.CreateSQLQuery("INSERT INTO nh_note (Id, Text) VALUES (:id, 'duplicate')").SetInt32("id", id).ExecuteUpdate());

            Assert.That(error, Is.TypeOf<GenericADOException>(), "NHibernate's own conversion");
            Assert.That(ServerErrors.Number(error), Is.EqualTo(1062));
            Assert.That(pool.GetStatistics().Idle, Is.EqualTo(1), "the idle sibling stays");
        }

        Save(factory, "after the duplicate");
        var stats = pool.GetStatistics();
        Assert.That((stats.Total, stats.Evicted), Is.EqualTo((2, 0L)), string.Join("\n", log.Messages("ConnectionEvicted")));
        Assert.That(_admin.ConnectionIds().OrderBy(t => t), Is.EqualTo(threads), "the same two physical connections serve on");
        Assert.That(log.Has("HostLeft"), Is.False);
    }

    [TestCase("UseKeepAlive")]
    [TestCase("builder")]
    [TestCase("Fluent")]
    public void Every_way_to_configure_in_code_installs_the_converter(string way)
    {
        var cs = TestServer.ConnectionString(Driver);
        using var factory = way switch
        {
            "UseKeepAlive" => Mappings.Configuration(Driver).UseKeepAlive().BuildSessionFactory(),
            "builder" => new KeepAliveSessionFactoryBuilder(cs).KeepAlive(o => o.Driver = Driver).AddMapping(Mappings.Notes()).Build(),
            _ => Fluently.Configure()
                .Database(MySQLConfiguration.Standard.ConnectionString(cs))
                .ExposeConfiguration(c => c.AddMapping(Mappings.Notes()))
                .KeepAlive(o => o.Driver = Driver)
                .BuildSessionFactory(),
        };

        var converter = ((ISessionFactoryImplementor)factory).SQLExceptionConverter;
        Assert.That(converter, Is.TypeOf<KeepAliveSqlExceptionConverter>());
        Assert.That(((KeepAliveSqlExceptionConverter)converter).Inner, Is.TypeOf<SQLStateConverter>(), "the MySQL dialect's own conversion does the work");
    }

    [Test]
    public void A_configuration_naming_only_the_provider_needs_the_converter_named_too()
    {
        var configuration = new global::NHibernate.Cfg.Configuration();
        configuration.SetProperty(Environment.ConnectionProvider, KeepAliveConfiguration.ProviderTypeName);
        configuration.SetProperty(Environment.ConnectionString, TestServer.ConnectionString(Driver));
        configuration.SetProperty(Environment.Dialect, typeof(global::NHibernate.Dialect.MySQL57Dialect).AssemblyQualifiedName);
        configuration.SetProperty(Environment.Hbm2ddlKeyWords, "none");
        configuration.SetProperty(KeepAliveProperties.Driver, Driver == MySqlDriver.MySqlConnector ? "mysqlconnector" : "mysql.data");
        configuration.AddMapping(Mappings.Notes());
        using (var alone = configuration.BuildSessionFactory())
            Assert.That(((ISessionFactoryImplementor)alone).SQLExceptionConverter, Is.Not.InstanceOf<KeepAliveSqlExceptionConverter>(), "NHibernate builds the converter before the provider exists");

        configuration.SetProperty(Environment.SqlExceptionConverter, "NHKeepAlive.NHibernate.KeepAliveSqlExceptionConverter, NHKeepAlive.NHibernate");
        using var named = configuration.BuildSessionFactory();
        Assert.That(((ISessionFactoryImplementor)named).SQLExceptionConverter, Is.TypeOf<KeepAliveSqlExceptionConverter>());
    }

    /// <summary>Opens <paramref name="count"/> connections at once (a transaction each) and gives them back.</summary>
    private static void Warm(ISessionFactory factory, int count)
    {
        var sessions = Enumerable.Range(0, count).Select(_ => factory.OpenSession()).ToList();
        var transactions = sessions.Select(s => s.BeginTransaction()).ToList();
        for (var i = 0; i < count; i++)
        {
            sessions[i].Save(new Note { Text = "warm" });
            transactions[i].Commit();
        }

        transactions.ForEach(t => t.Dispose());
        sessions.ForEach(s => s.Dispose());
    }

    private static int Evictions(CapturingLoggerFactory log, EvictionReason reason) =>
        log.Messages("ConnectionEvicted").Count(m => m.Contains($"({reason})", StringComparison.Ordinal));

    private global::NHibernate.Cfg.Configuration LimitedConfiguration()
    {
        var configuration = Mappings.Configuration(Driver);
        var cs = TestServer.ConnectionString(Driver).Replace($"User ID={TestServer.User};Password={TestServer.Password}", $"User ID={LimitedUser};Password={LimitedPassword}");
        configuration.SetProperty(Environment.ConnectionString, cs);
        return configuration;
    }

    /// <summary>A user with data privileges only (read_only applies to it), dropped at the end.</summary>
    private Scope LimitedUserScope()
    {
        var hosts = new[] { "127.0.0.1", "localhost" };
        foreach (var host in hosts)
        {
            _admin.Execute($"DROP USER IF EXISTS '{LimitedUser}'@'{host}'");
            _admin.Execute($"CREATE USER '{LimitedUser}'@'{host}' IDENTIFIED BY '{LimitedPassword}'");
            _admin.Execute($"GRANT SELECT, INSERT, UPDATE, DELETE ON `{TestServer.Database}`.* TO '{LimitedUser}'@'{host}'");
        }

        return new Scope(() =>
        {
            foreach (var id in LimitedConnections())
                _admin.Kill(id);
            foreach (var host in hosts)
                _admin.Execute($"DROP USER IF EXISTS '{LimitedUser}'@'{host}'");
        });
    }

    /// <summary>The server turns read_only=1 until disposed.</summary>
    private Scope ReadOnlyServer()
    {
        _admin.Execute("SET GLOBAL read_only = 1");
        return new Scope(() => _admin.Execute("SET GLOBAL read_only = 0"));
    }

    private IReadOnlyList<long> LimitedConnections() =>
        _admin.ConnectionIdsOf($"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{LimitedUser}'");

    private bool WaitForLimitedConnections(Func<int, bool> expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!expected(LimitedConnections().Count))
        {
            if (DateTime.UtcNow > deadline)
                return false;
            Thread.Sleep(50);
        }

        return true;
    }

    private sealed class Scope(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
