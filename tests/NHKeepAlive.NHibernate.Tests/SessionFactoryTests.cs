using System;
using System.Threading.Tasks;
using System.IO;
using System.Linq;
using System.Threading;
using FluentNHibernate.Cfg;
using FluentNHibernate.Cfg.Db;
using NHibernate;
using NHibernate.Connection;
using NHibernate.Driver;
using NHibernate.Engine;
using NHibernate.Tool.hbm2ddl;
using NHKeepAlive.FluentNHibernate;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate.Tests;

/// <summary>Base of the tests that go through NHibernate to the real server.</summary>
[NonParallelizable]
public abstract class NHibernateTest(MySqlDriver driver)
{
    private protected ServerAdmin _admin = null!;

    protected MySqlDriver Driver => driver;

    [SetUp]
    public void SetUp()
    {
        _admin = new ServerAdmin();
        new SchemaExport(Mappings.Configuration(driver)).Create(useStdOut: false, execute: true);
    }

    [TearDown]
    public void TearDown()
    {
        try
        {
            _admin.KillAll(_admin.ConnectionIds());
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
        {
        }

        _admin.Dispose();
    }

    protected static int Save(ISessionFactory factory, string text)
    {
        using var session = factory.OpenSession();
        using var transaction = session.BeginTransaction();
        var note = new Note { Text = text };
        session.Save(note);
        transaction.Commit();
        return note.Id;
    }

    /// <summary>The same unit of work as <see cref="Save"/> through NHibernate's async API.</summary>
    protected static async Task<int> SaveAsync(ISessionFactory factory, string text)
    {
        using var session = factory.OpenSession();
        using var transaction = session.BeginTransaction();
        var note = new Note { Text = text };
        await session.SaveAsync(note);
        await transaction.CommitAsync();
        return note.Id;
    }

    /// <summary>Rows of <c>nh_note</c> on the server whose text is <paramref name="text"/>, counted through the admin connection.</summary>
    private protected long Rows(string text) =>
        _admin.Count($"SELECT COUNT(*) FROM nh_note WHERE Text = '{text}'");

    /// <summary>KILLs server connection <paramref name="thread"/> and waits until the processlist no longer shows it.</summary>
    private protected void KillAndWait(long thread)
    {
        _admin.Kill(thread);
        Assert.That(_admin.WaitForConnectionCount(_ => !_admin.ConnectionIds().Contains(thread), TimeSpan.FromSeconds(15)), Is.True, $"the server dropped connection {thread}");
    }

    protected static string? Load(ISessionFactory factory, int id)
    {
        using var session = factory.OpenSession();
        return session.Get<Note>(id)?.Text;
    }

    protected static KeepAlivePool PoolOf(ISessionFactory factory) =>
        ((KeepAliveConnectionProvider)((ISessionFactoryImplementor)factory).ConnectionProvider).Pool!;
}

/// <summary>Through NHibernate against the real server: each way to configure ends in a working factory that no fault can surprise.</summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class SessionFactoryTests(MySqlDriver driver) : NHibernateTest(driver)
{
    [Test]
    public void The_builder_makes_a_factory_that_saves_and_loads()
    {
        var builder = new KeepAliveSessionFactoryBuilder(TestServer.ConnectionString(Driver))
            .KeepAlive(o => o.Driver = Driver)
            .AddMapping(Mappings.Notes())
            .CurrentSessionContext("thread_static");
        builder.UpdateSchema();
        using var factory = builder.Build();

        var id = Save(factory, "hello");

        Assert.That(Load(factory, id), Is.EqualTo("hello"));
        Assert.That(((ISessionFactoryImplementor)factory).ConnectionProvider, Is.TypeOf<KeepAliveConnectionProvider>());
        using var session = factory.OpenSession();
        global::NHibernate.Context.CurrentSessionContext.Bind(session);
        Assert.That(factory.GetCurrentSession(), Is.SameAs(session));
        global::NHibernate.Context.CurrentSessionContext.Unbind(factory);
    }

    /// <summary>Plain units of work (a transaction, a save, a load, a commit) leave the session clean: no reset on either driver; one that sets a user variable in native SQL is reset before the next.</summary>
    [TestCase(false)]
    [TestCase(true)]
    public async Task Units_of_work_stay_on_the_fast_path_and_a_session_change_in_native_SQL_is_reset(bool async)
    {
        var builder = new KeepAliveSessionFactoryBuilder(TestServer.ConnectionString(Driver))
            .KeepAlive(o => { o.Driver = Driver; o.MaxPoolSize = 1; })
            .AddMapping(Mappings.Notes());
        using var factory = builder.Build();
        var pool = PoolOf(factory);
        Save(factory, "warm-up");

        for (var i = 0; i < 5; i++)
        {
            using var session = factory.OpenSession();
            using var transaction = session.BeginTransaction();
            var note = new Note { Text = $"unit {i}" };
            if (async)
            {
                await session.SaveAsync(note);
                await session.GetAsync<Note>(note.Id);
                await transaction.CommitAsync();
            }
            else
            {
                session.Save(note);
                session.Get<Note>(note.Id);
                transaction.Commit();
            }
        }

        Assert.That(pool.GetStatistics().SessionResets, Is.Zero, "plain units of work leave the session as it opened");

        using (var session = factory.OpenSession())
        using (var transaction = session.BeginTransaction())
        {
            session.CreateSQLQuery("SET time_zone = '+05:00'").ExecuteUpdate();
            session.Get<Note>(1);
            transaction.Commit();
        }

        using (var session = factory.OpenSession())
        {
            var leftover = session.CreateSQLQuery("SELECT CAST(@@SESSION.time_zone AS CHAR)").UniqueResult();
            Assert.That(Convert.ToString(leftover, System.Globalization.CultureInfo.InvariantCulture), Is.Not.EqualTo("+05:00"));
        }

        Assert.That(pool.GetStatistics().SessionResets, Is.EqualTo(1));
    }

    [Test]
    public void Units_of_work_after_an_idle_past_wait_timeout_a_kill_and_a_restart_all_succeed()
    {
        using var _ = _admin.GlobalWaitTimeout(1);
        using var factory = Mappings.Configuration(Driver).UseKeepAlive(o => o.KeepAliveInterval = TimeSpan.Zero).BuildSessionFactory();
        var pool = PoolOf(factory);
        var id = Save(factory, "before");
        var ids = _admin.ConnectionIds();

        _admin.WaitForConnectionCount(n => n == 0, TimeSpan.FromSeconds(15));
        Assert.That(Load(factory, id), Is.EqualTo("before"), "after an idle past wait_timeout");
        Save(factory, "after idle");

        _admin.KillAll(_admin.ConnectionIds());
        _admin.WaitForConnectionCount(n => n == 0, TimeSpan.FromSeconds(10)); // the server has closed them
        Assert.That(Load(factory, id), Is.EqualTo("before"), "right after KILL, inside the bypass window");

        TestServer.Control("restart");
        Assert.That(Load(factory, id), Is.EqualTo("before"), "right after a restart");
        Save(factory, "after restart");
        var stats = pool.GetStatistics();
        Assert.That(stats.SocketCheckFailures + stats.ValidationFailures, Is.GreaterThanOrEqualTo(2), "the pool found the dead connections, not the units of work");
        Assert.That(ids, Is.Not.Empty);
    }

    [Test]
    public void A_held_connection_lost_inside_a_transaction_gives_a_clear_error_and_commits_nothing()
    {
        // The default bypass window: the KILL comes right after the flush, and once the server has
        // dropped the connection the socket check sees it closed without a round trip.
        using var factory = Mappings.Configuration(Driver).UseKeepAlive().BuildSessionFactory();
        using var session = factory.OpenSession();
        var transaction = session.BeginTransaction();
        session.Save(new Note { Text = "lost" });
        session.Flush();
        var killed = _admin.ConnectionIds();
        _admin.KillAll(killed);
        Assert.That(_admin.WaitForConnectionCount(_ => !_admin.ConnectionIds().Intersect(killed).Any(), TimeSpan.FromSeconds(15)), Is.True, "the server dropped the killed connections");

        var error = Assert.Catch(() => session.Save(new Note { Text = "lost too" }))!;

        var chain = string.Join(" -> ", Chain(error).Select(e => e.GetType().Name));
        Assert.That(Chain(error).OfType<ConnectionLostException>(), Is.Not.Empty, chain);
        Assert.That(_admin.Count("SELECT COUNT(*) FROM nh_note"), Is.Zero);
        GC.KeepAlive(transaction);
    }

    private static System.Collections.Generic.IEnumerable<Exception> Chain(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            yield return x;
    }

    [Test]
    public void Fluently_Configure_with_KeepAlive_makes_a_working_factory()
    {
        var database = Driver == MySqlDriver.MySqlData
            ? MySQLConfiguration.Standard.ConnectionString(TestServer.ConnectionString(Driver))
            : MySQLConfiguration.Standard.ConnectionString(TestServer.ConnectionString(Driver)).Driver<KeepAliveMySqlConnectorDriver>();
        using var factory = Fluently.Configure()
            .Database(database)
            .Mappings(m => m.HbmMappings.AddClasses()) // nothing: the mapping is added below
            .ExposeConfiguration(c => c.AddMapping(Mappings.Notes()))
            .KeepAlive(o => o.MaxPoolSize = 9)
            .BuildSessionFactory();

        var id = Save(factory, "fluent");

        Assert.That(Load(factory, id), Is.EqualTo("fluent"));
        Assert.That(PoolOf(factory).GetStatistics().MaxPoolSize, Is.EqualTo(9));
        Assert.That(((ISessionFactoryImplementor)factory).ConnectionProvider.Driver, Is.InstanceOf<KeepAliveMySqlDataDriver>().Or.InstanceOf<KeepAliveMySqlConnectorDriver>());
    }

    [Test]
    public void A_hibernate_cfg_xml_naming_the_provider_makes_a_working_factory()
    {
        var driverClass = Driver == MySqlDriver.MySqlData ? "NHibernate.Driver.MySqlDataDriver" : "NHKeepAlive.NHibernate.KeepAliveMySqlConnectorDriver, NHKeepAlive.NHibernate";
        var path = Path.Combine(Path.GetTempPath(), $"nhk-{Guid.NewGuid():N}.cfg.xml");
        File.WriteAllText(path, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <hibernate-configuration xmlns="urn:nhibernate-configuration-2.2">
              <session-factory>
                <property name="connection.provider">NHKeepAlive.NHibernate.KeepAliveConnectionProvider, NHKeepAlive.NHibernate</property>
                <property name="connection.driver_class">{driverClass}</property>
                <property name="connection.connection_string">{TestServer.ConnectionString(Driver)}</property>
                <property name="dialect">NHibernate.Dialect.MySQL57Dialect</property>
              </session-factory>
            </hibernate-configuration>
            """);
        try
        {
            var configuration = new global::NHibernate.Cfg.Configuration().Configure(path);
            configuration.AddMapping(Mappings.Notes());
            using var factory = configuration.BuildSessionFactory();

            var id = Save(factory, "xml");

            Assert.That(Load(factory, id), Is.EqualTo("xml"));
            Assert.That(PoolOf(factory).GetStatistics().MaxPoolSize, Is.EqualTo(KeepAliveOptions.DefaultMaxPoolSize));
            Assert.That(((ISessionFactoryImplementor)factory).ConnectionProvider.Driver, Is.InstanceOf<KeepAliveMySqlDataDriver>().Or.InstanceOf<KeepAliveMySqlConnectorDriver>());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void Two_factories_never_share_a_pool_and_closing_one_leaves_the_other_working()
    {
        var first = Mappings.Configuration(Driver).UseKeepAlive().BuildSessionFactory();
        using var second = Mappings.Configuration(Driver).UseKeepAlive().BuildSessionFactory();
        var id = Save(first, "one");
        Save(second, "two");
        Assert.That(PoolOf(first), Is.Not.SameAs(PoolOf(second)));

        first.Dispose();

        Assert.That(Load(second, id), Is.EqualTo("one"));
        Assert.That(PoolOf(first).GetStatistics().Total, Is.Zero, "the closed factory's pool closed its connections");
    }
}

/// <summary>
/// Stock NHibernate against NHKeepAlive in the same test, so that the test proves the difference
/// rather than assuming it. MySql.Data only: NHibernate has no stock MySqlConnector driver.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
public class StockProviderComparisonTests(MySqlDriver driver) : NHibernateTest(driver)
{
    [Test]
    public void A_long_session_holding_its_connection_across_wait_timeout_fails_with_the_stock_provider_and_succeeds_with_NHKeepAlive()
    {
        using var _ = _admin.GlobalWaitTimeout(1);
        MySql.Data.MySqlClient.MySqlConnection.ClearAllPools(); // the stock pool's connections predate the short wait_timeout
        int id;
        using (var setup = StockFactory())
            id = Save(setup, "held");

        var stockErrors = QueriesAcrossIdles(StockFactory(), id);
        var keepAliveErrors = QueriesAcrossIdles(Mappings.Configuration(Driver).UseKeepAlive(o => o.KeepAliveInterval = TimeSpan.Zero).BuildSessionFactory(), id);

        TestContext.Progress.WriteLine($"release_mode=on_close, 3 idles past wait_timeout: stock {stockErrors} errors, NHKeepAlive {keepAliveErrors}");
        Assert.That(stockErrors, Is.GreaterThan(0), "the stock provider fails: the server dropped the session's connection");
        Assert.That(keepAliveErrors, Is.Zero);
    }

    private ISessionFactory StockFactory()
    {
        var configuration = Mappings.Configuration(Driver);
        configuration.SetProperty(Environment.ConnectionProvider, typeof(DriverConnectionProvider).AssemblyQualifiedName);
        return configuration.BuildSessionFactory();
    }

    /// <summary>One session with release_mode=on_close, a query, then three idles past wait_timeout each followed by a query; returns how many queries failed.</summary>
    private int QueriesAcrossIdles(ISessionFactory factory, int id)
    {
        using (factory)
        {
            var errors = 0;
            using var session = factory.WithOptions().ConnectionReleaseMode(ConnectionReleaseMode.OnClose).OpenSession();
            session.Get<Note>(id);
            for (var i = 0; i < 3; i++)
            {
                var mine = PoolAccounting.ServerThreadOf(session.Connection); // the stock provider's connection, or the driver's under a handle
                _admin.WaitForConnectionCount(_ => !_admin.ConnectionIds().Contains(mine), TimeSpan.FromSeconds(15));
                session.Clear();
                try
                {
                    session.Get<Note>(id);
                }
                catch (Exception e) when (e is ADOException or System.Data.Common.DbException)
                {
                    errors++;
                    TestContext.Progress.WriteLine($"  {factory.GetType().Name}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                }
            }

            return errors;
        }
    }
}
