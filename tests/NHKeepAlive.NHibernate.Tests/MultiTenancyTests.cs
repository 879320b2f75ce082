using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using NHibernate;
using NHibernate.Dialect;
using NHibernate.Engine;
using NHibernate.MultiTenancy;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;
using Configuration = NHibernate.Cfg.Configuration;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate.Tests;

/// <summary>
/// NHibernate's multi-tenancy with a database per tenant (<c>multi_tenancy.strategy=Database</c>) on
/// <see cref="KeepAliveMultiTenancyConnectionProvider"/>: 200 tenant databases created by the fixture, sessions
/// across them from 8 threads, against the stock provider and the driver's own pools in the same test.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
[NonParallelizable]
public class MultiTenancyTests(MySqlDriver driver)
{
    private const int TenantCount = 200;
    private const int Workers = 8;
    private const int RandomSessionsPerWorker = 50;

    private ServerAdmin _admin = null!;
    private TenantDatabases _tenants = null!;

    [OneTimeSetUp]
    public void CreateTenants()
    {
        _admin = new ServerAdmin();
        _tenants = new TenantDatabases(_admin, TenantCount);
    }

    [OneTimeTearDown]
    public void DropTenants()
    {
        ClearStockPools();
        _tenants.Dispose();
        _admin.Dispose();
    }

    [SetUp]
    public void NothingOnTheServer()
    {
        ClearStockPools();
        _admin.KillAll(_admin.ConnectionIds());
        Assert.That(_admin.WaitForConnectionCount(c => c == 0, TimeSpan.FromSeconds(10)), "no connection of the test user is left from an earlier test");
    }

    [Test]
    public void Sessions_across_200_tenant_databases_from_8_threads_with_bounded_threads_and_nothing_left_on_the_server()
    {
        var baseline = ProcessThreads();

        int stockThreads;
        long stockConnections;
        using (var stock = StockFactory())
        {
            var (sessions, errors, _) = Run(stock);
            stockThreads = ProcessThreads();
            stockConnections = _tenants.ConnectionsOnTenants();
            Assert.That(errors, Is.Empty, "the stock provider's sessions");
            Assert.That(sessions, Is.EqualTo(TenantCount + (Workers * RandomSessionsPerWorker)));
        }

        ClearStockPools();
        Assert.That(_admin.WaitForConnectionCount(c => c == 0, TimeSpan.FromSeconds(10)), "the stock pools are cleared before NHKeepAlive runs");

        var factory = KeepAliveFactory();
        int keepAliveThreads;
        long keepAliveConnections;
        try
        {
            var (sessions, errors, housekeepingThreads) = Run(factory);
            keepAliveThreads = ProcessThreads();
            keepAliveConnections = _tenants.ConnectionsOnTenants();
            Assert.That(errors, Is.Empty, "NHKeepAlive's sessions");
            Assert.That(sessions, Is.EqualTo(TenantCount + (Workers * RandomSessionsPerWorker)));
            Assert.That(ProviderOf(factory).TenantPools!.Count, Is.EqualTo(TenantCount), "one pool per tenant");
            Assert.That(housekeepingThreads, Is.LessThanOrEqualTo(4), "the most housekeeping threads seen while the sessions ran");
            Assert.That(Housekeeping.Threads, Is.LessThanOrEqualTo(4));
        }
        finally
        {
            factory.Dispose();
        }

        var left = _admin.WaitForConnectionCount(c => c == 0, TimeSpan.FromSeconds(10));
        TestContext.Out.WriteLine($"{driver}, {TenantCount} tenants: process threads {baseline} at the start, {stockThreads} after the stock provider (+{stockThreads - baseline}), {keepAliveThreads} after NHKeepAlive (+{keepAliveThreads - baseline}); server connections on tenants after the run: stock {stockConnections}, NHKeepAlive {keepAliveConnections}");
        Assert.That(left, $"nothing of the test user's is left on the server once the factory is disposed (left: {_admin.ConnectionIds().Count})");
        Assert.That(keepAliveThreads - baseline, Is.LessThanOrEqualTo(stockThreads - baseline + 30), "NHKeepAlive's thread growth over 200 tenants stays within the stock provider's + 30");
    }

    [Test]
    public void Sixteen_threads_opening_the_first_session_of_a_new_tenant_at_once_build_exactly_one_pool()
    {
        using var factory = KeepAliveFactory();
        var provider = ProviderOf(factory);
        UnitOfWork(factory, _tenants.Names[0], "warm-up"); // the set and the server's facts exist before the race
        var tenant = _tenants.Names[TenantCount - 1];
        var poolsBefore = provider.TenantPools!.Count;
        var registeredBefore = Housekeeping.Registered;

        using var start = new Barrier(16);
        var errors = new ConcurrentQueue<Exception>();
        var threads = Enumerable.Range(0, 16).Select(i => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                UnitOfWork(factory, tenant, $"race {i}");
            }
#pragma warning disable CA1031 // Collected and asserted on.
            catch (Exception e)
#pragma warning restore CA1031
            {
                errors.Enqueue(e);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.That(errors, Is.Empty);
        Assert.That(provider.TenantPools.Count, Is.EqualTo(poolsBefore + 1), "one pool for the new tenant in the provider's set");
        Assert.That(Housekeeping.Registered - registeredBefore, Is.EqualTo(1), "one pool built (each pool registers with the housekeeping scheduler once)");
    }

    [Test]
    public void A_retired_tenant_pool_is_built_again_on_the_next_session()
    {
        using var factory = KeepAliveFactory(configure: o => o.TenantPoolRetireAfter = TimeSpan.FromSeconds(1));
        var provider = ProviderOf(factory);
        var tenant = _tenants.Names[5];
        var first = Stopwatch.StartNew();
        UnitOfWork(factory, tenant, "first");
        first.Stop();
        var warm = Stopwatch.StartNew();
        UnitOfWork(factory, tenant, "warm");
        warm.Stop();
        Assert.That(provider.TenantPools!.Count, Is.EqualTo(1));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while ((provider.TenantPools.Count > 0 || _tenants.ConnectionsOn(tenant) > 0) && DateTime.UtcNow < deadline)
            Thread.Sleep(100);
        Assert.That(provider.TenantPools.Count, Is.Zero, "the quiet tenant's pool is retired");
        Assert.That(_tenants.ConnectionsOn(tenant), Is.Zero, "and its connections are closed on the server");

        var again = Stopwatch.StartNew();
        UnitOfWork(factory, tenant, "after retirement");
        again.Stop();

        Assert.That(provider.TenantPools.Count, Is.EqualTo(1), "built again");
        TestContext.Out.WriteLine($"{driver}: first session of the tenant {first.Elapsed.TotalMilliseconds:F1} ms, warm {warm.Elapsed.TotalMilliseconds:F1} ms, first after retirement {again.Elapsed.TotalMilliseconds:F1} ms");
    }

    [Test]
    public void Max_Pool_Size_in_the_connection_string_is_never_exceeded_under_16_threads()
    {
        using var factory = KeepAliveFactory(extra: "Max Pool Size=5");
        var tenant = _tenants.Names[7];
        var peak = 0L;
        var samples = 0;
        using var done = new ManualResetEventSlim();
        var sampler = new Thread(() =>
        {
            while (!done.IsSet)
            {
                peak = Math.Max(peak, _tenants.ConnectionsOn(tenant));
                samples++;
                Thread.Sleep(5);
            }
        });
        sampler.Start();

        var errors = new ConcurrentQueue<Exception>();
        var workers = Enumerable.Range(0, 16).Select(i => new Thread(() =>
        {
            for (var n = 0; n < 15; n++)
            {
                try
                {
                    UnitOfWork(factory, tenant, $"worker {i} unit {n}", hold: true);
                }
#pragma warning disable CA1031 // Collected and asserted on.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    errors.Enqueue(e);
                }
            }
        })).ToList();
        workers.ForEach(t => t.Start());
        workers.ForEach(t => t.Join());
        done.Set();
        sampler.Join();

        TestContext.Out.WriteLine($"{driver}: at most {peak} server connections on the tenant in {samples} samples");
        Assert.That(errors, Is.Empty);
        Assert.That(peak, Is.LessThanOrEqualTo(5), "Max Pool Size=5 of the connection string holds for the tenant's pool");
        Assert.That(peak, Is.GreaterThanOrEqualTo(2), "the sessions did run side by side");
    }

    [Test]
    public void A_tenant_identifier_that_is_not_a_database_name_fails_with_its_name()
    {
        using var factory = KeepAliveFactory();
        var error = Assert.Catch(() => UnitOfWork(factory, "acme; DROP DATABASE x", "never"))!;
        var innermost = error;
        while (innermost.InnerException is not null && innermost is not KeepAliveConfigurationException)
            innermost = innermost.InnerException;
        Assert.That(innermost, Is.TypeOf<KeepAliveConfigurationException>());
        Assert.That(innermost.Message, Does.Contain("'acme; DROP DATABASE x'").And.Contain("letters, digits"));
        Assert.That(() => KeepAliveMultiTenancyConnectionProvider.ValidateTenantIdentifier(new string('a', 65)), Throws.TypeOf<KeepAliveConfigurationException>().With.Message.Contains("at most 64"));
        Assert.That(() => KeepAliveMultiTenancyConnectionProvider.ValidateTenantIdentifier("tenant_$-9"), Throws.Nothing);
    }

    [Test]
    public void The_database_is_replaced_under_any_alias_the_driver_knows_and_every_other_option_kept()
    {
        var replaced = MySqlConnectionStrings.WithDatabase("Server=db1;Port=3307;Initial Catalog=main;User ID=app;Password=s3cret;Max Pool Size=5", "tenant_1", driver);

        if (driver == MySqlDriver.MySqlData)
        {
            var builder = new MySql.Data.MySqlClient.MySqlConnectionStringBuilder(replaced);
            Assert.That((builder.Database, builder.Server, builder.Port, builder.UserID, builder.Password, builder.MaximumPoolSize), Is.EqualTo(("tenant_1", "db1", 3307u, "app", "s3cret", 5u)));
        }
        else
        {
            var builder = new MySqlConnector.MySqlConnectionStringBuilder(replaced);
            Assert.That((builder.Database, builder.Server, builder.Port, builder.UserID, builder.Password, builder.MaximumPoolSize), Is.EqualTo(("tenant_1", "db1", 3307u, "app", "s3cret", 5u)));
        }

        Assert.That(replaced, Does.Not.Contain("main"));
    }

    /// <summary>One session of <paramref name="tenant"/>: saves a note, reads it back with the database it landed in, commits.</summary>
    private static void UnitOfWork(ISessionFactory factory, string tenant, string text, bool hold = false)
    {
        using var session = factory.WithOptions().Tenant(new TenantConfiguration(tenant)).OpenSession();
        using var transaction = session.BeginTransaction();
        var note = new Note { Text = text };
        session.Save(note);
        if (hold)
            session.CreateSQLQuery("DO SLEEP(0.01)").ExecuteUpdate();
        var read = session.CreateSQLQuery("SELECT CONCAT(DATABASE(), '/', Text) FROM nh_note WHERE Id = :id").SetParameter("id", note.Id).UniqueResult<string>();
        if (read != tenant + "/" + text)
            throw new InvalidOperationException($"The session of {tenant} read '{read}'.");
        transaction.Commit();
    }

    /// <summary>Every tenant touched once (its first session), then random tenants, from <see cref="Workers"/> threads.</summary>
    private (int Sessions, List<Exception> Errors, int HousekeepingThreads) Run(ISessionFactory factory)
    {
        var errors = new ConcurrentQueue<Exception>();
        var sessions = 0;
        var housekeeping = 0;
        var names = _tenants.Names;
        var workers = Enumerable.Range(0, Workers).Select(w => new Thread(() =>
        {
            var random = new Random(w);
            var mine = Enumerable.Range(0, names.Count).Where(i => i % Workers == w).Select(i => names[i])
                .Concat(Enumerable.Range(0, RandomSessionsPerWorker).Select(_ => names[random.Next(names.Count)]));
            foreach (var tenant in mine)
            {
                try
                {
                    UnitOfWork(factory, tenant, $"worker {w}");
                    Interlocked.Increment(ref sessions);
                }
#pragma warning disable CA1031 // Collected and asserted on.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    errors.Enqueue(e);
                }

                InterlockedMax(ref housekeeping, Housekeeping.Threads);
            }
        })).ToList();
        workers.ForEach(t => t.Start());
        workers.ForEach(t => t.Join());
        return (sessions, errors.ToList(), housekeeping);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    private ISessionFactory KeepAliveFactory(string? extra = null, Action<KeepAliveOptions>? configure = null)
    {
        var configuration = new Configuration();
        configuration.SetProperty(Environment.ConnectionString, TestServer.ConnectionString(driver, extra: extra));
        configuration.SetProperty(Environment.Dialect, typeof(MySQL57Dialect).AssemblyQualifiedName);
        configuration.SetProperty(Environment.Hbm2ddlKeyWords, "none");
        configuration.AddMapping(Mappings.Notes());
        configuration.UseKeepAliveMultiTenancy(o =>
        {
            o.Driver = driver;
            o.ShutdownGracePeriod = TimeSpan.Zero;
            configure?.Invoke(o);
        });
        return configuration.BuildSessionFactory();
    }

    /// <summary>NHibernate's DriverConnectionProvider and the driver's own pool, each tenant's string from a template.</summary>
    private ISessionFactory StockFactory()
    {
        var configuration = Mappings.Configuration(driver);
        StockTenantProvider.Template = TestServer.ConnectionString(driver).Replace($"Database={TestServer.Database}", "Database={database}");
        configuration.SetProperty(Environment.MultiTenancy, nameof(MultiTenancyStrategy.Database));
        configuration.SetProperty(Environment.MultiTenancyConnectionProvider, typeof(StockTenantProvider).AssemblyQualifiedName);
        return configuration.BuildSessionFactory();
    }

    private static KeepAliveConnectionProvider ProviderOf(ISessionFactory factory) =>
        (KeepAliveConnectionProvider)((ISessionFactoryImplementor)factory).ConnectionProvider;

    private static int ProcessThreads()
    {
        using var process = Process.GetCurrentProcess();
        return process.Threads.Count;
    }

    private static void ClearStockPools()
    {
        MySql.Data.MySqlClient.MySqlConnection.ClearAllPools();
        MySqlConnector.MySqlConnection.ClearAllPools();
    }
}
