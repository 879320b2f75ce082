using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NHibernate;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.NHibernate.Tests;

/// <summary>
/// <c>services.AddKeepAliveNHibernate(section, ...)</c> (NHKeepAlive.NHibernate.Hosting) as an application uses it: a
/// service collection, the pool's options bound from configuration, the hosted services started, the
/// <see cref="ISessionFactory"/> and a scoped <see cref="ISession"/> resolved, units of work against the real server,
/// and the provider's disposal closing every physical connection the pool opened.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class HostingTests(MySqlDriver driver) : NHibernateTest(driver)
{
    [Test]
    public async Task A_service_collection_builds_the_factory_from_configuration_and_disposing_the_provider_closes_every_connection()
    {
        var poolName = "nh-hosting-" + Driver;
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["NHKeepAlive:ConnectionString"] = TestServer.ConnectionString(Driver),
                ["NHKeepAlive:Driver"] = Driver.ToString(),
                ["NHKeepAlive:PoolName"] = poolName,
                ["NHKeepAlive:nhkeepalive.max_pool_size"] = "3",
                ["NHKeepAlive:ShutdownGracePeriod"] = "2s",
            })
            .Build();
        using var logs = new CapturingLoggerFactory();
        var services = new ServiceCollection();
        services.AddSingleton<Microsoft.Extensions.Logging.ILoggerFactory>(logs);

        // The section overrides what the code sets (MaxPoolSize 1 here, 3 in the section).
        services.AddKeepAliveNHibernate(configuration.GetSection("NHKeepAlive"), b => b.AddMapping(Mappings.Notes()).KeepAlive(o => o.MaxPoolSize = 1));

        KeepAlivePool pool;
        ISessionFactory factory;
        IReadOnlyList<long> serverConnections;
        var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true, ValidateOnBuild = true });
        try
        {
            foreach (var hosted in provider.GetServices<IHostedService>())
                await hosted.StartAsync(CancellationToken.None);

            factory = provider.GetRequiredService<ISessionFactory>();
            pool = provider.GetRequiredService<KeepAlivePool>();
            Assert.That(provider.GetRequiredService<ISessionFactory>(), Is.SameAs(factory), "one factory for the application");
            Assert.That(PoolOf(factory), Is.SameAs(pool), "the registered pool is the factory's");
            Assert.That(pool.Name, Is.EqualTo(poolName));
            Assert.That(pool.GetStatistics().MaxPoolSize, Is.EqualTo(3), "the section's value wins over the code's");

            // A committed unit of work in one scope (one request), a rolled-back one in another.
            using (var scope = provider.CreateScope())
            {
                var session = scope.ServiceProvider.GetRequiredService<ISession>();
                Assert.That(scope.ServiceProvider.GetRequiredService<ISession>(), Is.SameAs(session), "one session per scope");
                Assert.That(session.SessionFactory, Is.SameAs(factory));
                using var transaction = session.BeginTransaction();
                session.Save(new Note { Text = "hosted" });
                transaction.Commit();
            }

            ISession rolledBackSession;
            using (var scope = provider.CreateScope())
            {
                rolledBackSession = scope.ServiceProvider.GetRequiredService<ISession>();
                using var transaction = rolledBackSession.BeginTransaction();
                rolledBackSession.Save(new Note { Text = "hosted-rolled-back" });
                rolledBackSession.Flush();
                transaction.Rollback();
            }

            Assert.That(rolledBackSession.IsOpen, Is.False, "the scope's end closed its session");
            Assert.That((Rows("hosted"), Rows("hosted-rolled-back")), Is.EqualTo((1L, 0L)), "(committed rows, rolled-back rows) on the server");
            Assert.That(logs.Has("ConnectionOpened"), Is.True, "the pool logs through the container's ILoggerFactory");

            // The pool accounts for every connection the server shows for the test user (the stock pools of the
            // schema set-up emptied first), and there is at least one to close.
            PoolAccounting.AssertPoolMatchesServer(_admin, pool);
            serverConnections = _admin.ConnectionIds();
            Assert.That(serverConnections, Is.Not.Empty, "the pool keeps its connection open between units of work");

            foreach (var hosted in provider.GetServices<IHostedService>())
                await hosted.StopAsync(CancellationToken.None);
        }
        finally
        {
            provider.Dispose();
        }

        var stats = pool.GetStatistics();
        Assert.That(stats.Active + stats.Idle, Is.Zero, $"the pool holds nothing after the provider's disposal ({stats})");
        Assert.That(factory.IsClosed, Is.True, "the container closed the session factory");
        Assert.That(
            _admin.WaitForConnectionCount(n => n == 0, TimeSpan.FromSeconds(5)),
            Is.True,
            $"the server shows none of the test user's connections after the provider's disposal (before: {string.Join(", ", serverConnections)}; now: {string.Join(", ", _admin.ConnectionIds())})");
        Assert.Throws<ObjectDisposedException>(() => pool.Rent().Dispose(), "the pool was disposed with the provider");
    }

    [Test]
    public void A_section_without_a_connection_string_stops_the_start_not_the_first_request()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["NHKeepAlive:MaxPoolSize"] = "3" })
            .Build();
        var services = new ServiceCollection();
        services.AddKeepAliveNHibernate(configuration.GetSection("NHKeepAlive"), b => b.AddMapping(Mappings.Notes()));
        using var provider = services.BuildServiceProvider();

        var error = Assert.ThrowsAsync<KeepAliveConfigurationException>(async () =>
        {
            foreach (var hosted in provider.GetServices<IHostedService>())
                await hosted.StartAsync(CancellationToken.None);
        });
        Assert.That(error!.Message, Does.Contain("'NHKeepAlive'").And.Contain("ConnectionString"));
    }
}
