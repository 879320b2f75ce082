using System;
using System.Data.Common;
using System.Linq;
using System.Threading.Tasks;
using FluentNHibernate.Cfg;
using FluentNHibernate.Cfg.Db;
using NHibernate;
using NHibernate.Connection;
using NHKeepAlive.FluentNHibernate;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate.Tests;

/// <summary>What kills the connection a session holds between two units of work.</summary>
public enum HeldFault
{
    /// <summary>The session idles past the server's <c>wait_timeout</c> (1 s).</summary>
    IdlePastWaitTimeout,

    /// <summary>The server KILLs the session's connection.</summary>
    Kill,

    /// <summary>The server restarts.</summary>
    Restart,
}

/// <summary>
/// Sessions that hold their connection (<c>connection.release_mode=on_close</c>) and run
/// {BeginTransaction; query; insert; Commit} after the connection died: the stock provider in the
/// same test fails, NHKeepAlive begins each transaction on a reopened connection.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class HeldTransactionTests(MySqlDriver driver) : NHibernateTest(driver)
{
    private const int Units = 3;

    [TestCase(HeldFault.IdlePastWaitTimeout)]
    [TestCase(HeldFault.Kill)]
    [TestCase(HeldFault.Restart)]
    public async Task Transactions_on_a_held_connection_after_a_fault_fail_with_the_stock_provider_and_never_with_NHKeepAlive(HeldFault fault)
    {
        await CompareWithStock(fault, async: false);
    }

    [TestCase(HeldFault.IdlePastWaitTimeout)]
    [TestCase(HeldFault.Kill)]
    [TestCase(HeldFault.Restart)]
    public async Task The_same_through_the_async_API(HeldFault fault)
    {
        await CompareWithStock(fault, async: true);
    }

    [Test]
    public void A_connection_lost_inside_an_open_transaction_is_a_ConnectionLostException_and_nothing_is_retried()
    {
        // The default bypass window: Inflict waits until the server has dropped the killed connection,
        // and the socket check sees that without a round trip.
        using var factory = KeepAliveFactory();
        var pool = PoolOf(factory);
        using (var session = HeldSession(factory))
        {
            RunUnit(session, "nhk first");
            var before = pool.GetStatistics();
            var transaction = session.BeginTransaction();
            session.Save(new Note { Text = "nhk lost" });
            Inflict(HeldFault.Kill, PoolAccounting.ServerThreadOf(session.Connection));

            var error = Assert.Catch(() => session.CreateSQLQuery("SELECT COUNT(*) FROM nh_note").UniqueResult())!;

            var chain = Chain(error).ToList();
            Assert.That(chain.OfType<ConnectionLostException>(), Is.Not.Empty, string.Join(" -> ", chain.Select(e => e.GetType().Name)));
            var after = pool.GetStatistics();
            Assert.That((after.Reopened, after.Created), Is.EqualTo((before.Reopened, before.Created)), "the connection was not reopened, nothing was retried");
            Assert.That(_admin.Count("SELECT COUNT(*) FROM nh_note WHERE Text = 'nhk lost'"), Is.Zero, "the server rolled the insert back");
            try
            {
                transaction.Dispose();
            }
            catch (Exception e) when (e is HibernateException or DbException or InvalidOperationException)
            {
                // The rollback of a transaction on a dead connection may throw: the server already rolled it back.
            }
        }

        PoolAccounting.AssertPoolMatchesServer(_admin, pool);
    }

    [Test]
    public void A_session_on_a_connection_of_the_application_is_left_alone()
    {
        using var factory = KeepAliveFactory();
        var pool = PoolOf(factory);
        using var connection = UserConnection();
        var thread = PoolAccounting.ServerThreadOf(connection);
        var before = pool.GetStatistics();

        using (var session = factory.WithOptions().Connection(connection).OpenSession())
            RunUnit(session, "user first");

        Assert.That(KeepAlivePool.OwnerOf(connection), Is.Null);
        Assert.That(PoolAccounting.ServerThreadOf(connection), Is.EqualTo(thread), "the same physical connection");
        Inflict(HeldFault.Kill, thread);
        using (var session = factory.WithOptions().Connection(connection).OpenSession())
            Assert.Catch(() => RunUnit(session, "user after kill"), "NHKeepAlive does not reopen a connection it does not own");

        var after = pool.GetStatistics();
        Assert.That((after.Created, after.Validations, after.Reopened, after.Active), Is.EqualTo((before.Created, before.Validations, before.Reopened, 0)));
        Assert.That(_admin.Count("SELECT COUNT(*) FROM nh_note WHERE Text LIKE 'user%'"), Is.EqualTo(1));
        PoolAccounting.AssertPoolMatchesServer(_admin, pool);
    }

    [TestCase("provider")]
    [TestCase("UseKeepAlive")]
    [TestCase("builder")]
    [TestCase("Fluent")]
    public void Every_way_to_configure_installs_the_guard_on_BeginTransaction(string way)
    {
        using var factory = FactoryConfigured(way);
        var pool = PoolOf(factory);
        using (var session = HeldSession(factory))
        {
            RunUnit(session, "nhk first");
            Inflict(HeldFault.Kill, PoolAccounting.ServerThreadOf(session.Connection));

            RunUnit(session, "nhk after kill");
        }

        Assert.That(pool.GetStatistics().Reopened, Is.EqualTo(1), "BeginTransaction reopened the held connection");
        Assert.That(_admin.Count("SELECT COUNT(*) FROM nh_note WHERE Text LIKE 'nhk%'"), Is.EqualTo(2));
        PoolAccounting.AssertPoolMatchesServer(_admin, pool);
    }

    private async Task CompareWithStock(HeldFault fault, bool async)
    {
        using var waitTimeout = fault == HeldFault.IdlePastWaitTimeout ? _admin.GlobalWaitTimeout(1) : null;
        MySql.Data.MySqlClient.MySqlConnection.ClearAllPools(); // the stock pools' connections predate the short wait_timeout
        MySqlConnector.MySqlConnection.ClearAllPools();

        int stockErrors;
        using (var stock = StockFactory())
            stockErrors = await UnitsAcrossFaults(stock, "stock", fault, async);

        // The KILL comes right after the commit, inside the default bypass window (500 ms); Inflict waits
        // until the server has dropped the connection, and the socket check sees it closed without a round trip.
        using var factory = KeepAliveFactory();
        var keepAliveErrors = await UnitsAcrossFaults(factory, "nhk", fault, async);

        TestContext.Progress.WriteLine($"{Driver}, release_mode=on_close, {fault}, {(async ? "async" : "sync")}: {Units} transactions after the fault: stock {stockErrors} failed, NHKeepAlive {keepAliveErrors} failed ({PoolOf(factory).GetStatistics().Reopened} reopened)");
        Assert.That(stockErrors, Is.GreaterThan(0), "the stock provider fails: the server dropped the session's connection");
        Assert.That(keepAliveErrors, Is.Zero);
        Assert.That(_admin.Count("SELECT COUNT(*) FROM nh_note WHERE Text LIKE 'nhk%'"), Is.EqualTo(Units + 1), "every NHKeepAlive transaction committed");
        Assert.That(PoolOf(factory).GetStatistics().Reopened, Is.EqualTo(Units), "each transaction began on a reopened connection");
        PoolAccounting.AssertPoolMatchesServer(_admin, PoolOf(factory));
    }

    /// <summary>One held session: a first unit of work, then <see cref="Units"/> times the fault and a unit of work; returns how many of those failed.</summary>
    private async Task<int> UnitsAcrossFaults(ISessionFactory factory, string label, HeldFault fault, bool async)
    {
        var errors = 0;
        using var session = HeldSession(factory);
        await RunUnit(session, $"{label} first", async);
        for (var i = 0; i < Units; i++)
        {
            var connection = session.Connection;
            Inflict(fault, connection.State == System.Data.ConnectionState.Open ? PoolAccounting.ServerThreadOf(connection) : 0);
            try
            {
                await RunUnit(session, $"{label} {i}", async);
            }
            catch (Exception e) when (e is HibernateException or DbException or InvalidOperationException)
            {
                errors++;
                TestContext.Progress.WriteLine($"  {label}: {string.Join(" > ", Chain(e).Select(x => x.GetType().Name))}: {e.Message.Split('\n')[0]}");
            }
        }

        return errors;
    }

    private void Inflict(HeldFault fault, long thread)
    {
        switch (fault)
        {
            case HeldFault.Restart:
                TestServer.Control("restart");
                return;
            case HeldFault.Kill when thread != 0:
                _admin.Kill(thread);
                break;
        }

        if (thread != 0)
            Assert.That(_admin.WaitForConnectionCount(_ => !_admin.ConnectionIds().Contains(thread), TimeSpan.FromSeconds(15)), Is.True, $"the server dropped connection {thread}");
    }

    private static void RunUnit(ISession session, string text) =>
        RunUnit(session, text, async: false).GetAwaiter().GetResult();

    /// <summary>{BeginTransaction; query; insert; Commit}, with the sync or the async API.</summary>
    private static async Task RunUnit(ISession session, string text, bool async)
    {
        session.Clear(); // so that the query goes to the server
        using var transaction = session.BeginTransaction();
        if (async)
        {
            await session.GetAsync<Note>(int.MaxValue);
            await session.SaveAsync(new Note { Text = text });
            await transaction.CommitAsync();
        }
        else
        {
            session.Get<Note>(int.MaxValue);
            session.Save(new Note { Text = text });
            transaction.Commit();
        }
    }

    private static ISession HeldSession(ISessionFactory factory) =>
        factory.WithOptions().ConnectionReleaseMode(ConnectionReleaseMode.OnClose).OpenSession();

    private ISessionFactory KeepAliveFactory(Action<KeepAliveOptions>? configure = null) =>
        Mappings.Configuration(Driver).UseKeepAlive(configure).BuildSessionFactory();

    /// <summary>NHibernate's own provider on the driver's own pool (for MySqlConnector, NHKeepAlive's driver, whose guards leave connections of no pool of NHKeepAlive alone).</summary>
    private ISessionFactory StockFactory()
    {
        var configuration = Mappings.Configuration(Driver);
        configuration.SetProperty(Environment.ConnectionProvider, typeof(DriverConnectionProvider).AssemblyQualifiedName);
        return configuration.BuildSessionFactory();
    }

    private DbConnection UserConnection()
    {
        var cs = TestServer.ConnectionString(Driver, extra: "Pooling=false");
        DbConnection connection = Driver == MySqlDriver.MySqlData
            ? new MySql.Data.MySqlClient.MySqlConnection(cs)
            : new MySqlConnector.MySqlConnection(cs);
        connection.Open();
        return connection;
    }

    private ISessionFactory FactoryConfigured(string way)
    {
        var cs = TestServer.ConnectionString(Driver);
        switch (way)
        {
            case "provider":
            {
                var configuration = new global::NHibernate.Cfg.Configuration();
                configuration.SetProperty(Environment.ConnectionProvider, KeepAliveConfiguration.ProviderTypeName);
                configuration.SetProperty(Environment.ConnectionString, cs);
                configuration.SetProperty(Environment.Dialect, typeof(global::NHibernate.Dialect.MySQL57Dialect).AssemblyQualifiedName);
                configuration.SetProperty(Environment.Hbm2ddlKeyWords, "none");
                configuration.SetProperty(KeepAliveProperties.Driver, Driver == MySqlDriver.MySqlConnector ? "mysqlconnector" : "mysql.data");
                configuration.AddMapping(Mappings.Notes());
                return configuration.BuildSessionFactory();
            }

            case "UseKeepAlive":
                return KeepAliveFactory();
            case "builder":
                return new KeepAliveSessionFactoryBuilder(cs)
                    .KeepAlive(o => o.Driver = Driver)
                    .AddMapping(Mappings.Notes())
                    .Build();
            case "Fluent":
                return Fluently.Configure()
                    .Database(MySQLConfiguration.Standard.ConnectionString(cs))
                    .ExposeConfiguration(c => c.AddMapping(Mappings.Notes()))
                    .KeepAlive(o => o.Driver = Driver)
                    .BuildSessionFactory();
            default:
                throw new ArgumentOutOfRangeException(nameof(way), way, null);
        }
    }

    private static System.Collections.Generic.IEnumerable<Exception> Chain(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            yield return x;
    }
}
