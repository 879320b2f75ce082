using System;
using System.Linq;
using System.Threading;
using NHibernate;
using NHibernate.Cfg.MappingSchema;
using NHibernate.Dialect;
using NHibernate.Mapping.ByCode;
using NHKeepAlive.NHibernate;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;
using Environment = NHibernate.Cfg.Environment;

// The namespace of every cluster fixture: the linked ClusterShutdown stops the cluster once they have run.
namespace NHKeepAlive.Tests.Integration.Cluster;

/// <summary>A row a unit of work writes: a key the client made, and the node that took it.</summary>
public class ClusterWrite
{
    public virtual string Id { get; set; } = string.Empty;

    public virtual string Node { get; set; } = string.Empty;
}

/// <summary>
/// An NHibernate session factory on a real 3-node Galera cluster, opened with the host list itself
/// (<c>Server=127.0.0.1,127.0.0.2,127.0.0.3</c>): 4 workers run units of work {BeginTransaction; the
/// node's name; Save a row with a client-made key; Commit} while node 1 refuses queries or turns
/// read-only. Nothing in the test tells the pool about errors: NHKeepAlive's exception converter and
/// drivers do. Errors are bounded by what was in flight, another node serves within a second, the
/// factory fails back to node 1 once it is healthy, no acknowledged write is lost.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
[Category("Integration")]
[Category("Cluster")]
[NonParallelizable]
public class NHibernateClusterFailoverTests(MySqlDriver driver) : ClusterTest(Table)
{
    private const string Table = "nhCluster_writes";
    private const int Workers = 4;

    [TestCase("reject")]
    [TestCase("readonly")]
    public void Units_of_work_leave_a_node_that_refuses_queries_or_turns_read_only_at_once_and_fail_back_without_errors(string fault)
    {
        using var factory = CreateFactory();
        var pool = PoolOf(factory);
        using var run = new WorkRun(factory, Cluster);
        run.Until(TimeSpan.FromSeconds(1.5));
        Assert.That(run.AckedOn().Keys, Is.EquivalentTo(new[] { "node1" }), "node 1, first in the host list, takes the units of work");
        var openOnNode1 = pool.GetStatistics().Total;

        var faultAt = run.Elapsed;
        if (fault == "reject")
            Cluster.Reject(1);
        else
            Cluster.ReadOnly(1);
        run.Until(faultAt + TimeSpan.FromSeconds(4));

        var errors = run.ErrorsBetween(faultAt, faultAt + TimeSpan.FromSeconds(4));
        var firstElsewhere = run.FirstAckAfter(faultAt, n => n != "node1") - faultAt;
        TestContext.Out.WriteLine($"{driver} {fault}: {errors.Count} errors ({string.Join(", ", errors.Select(e => e.Number).Distinct())}), first unit of work on another node {firstElsewhere.TotalMilliseconds:0} ms after the fault; {openOnNode1} connections were open to node 1");
        Assert.That(errors.Count, Is.LessThanOrEqualTo(Workers + openOnNode1), "at most the units of work in flight plus one per connection open to node 1");
        Assert.That(firstElsewhere, Is.LessThan(TimeSpan.FromSeconds(1)), "a healthy node took the units of work within a second");

        run.HealAndAssertFailback($"{driver} {fault}");

        run.Stop();
        run.AssertNoAcknowledgedWriteLost();
    }

    private ISessionFactory CreateFactory()
    {
        var configuration = new global::NHibernate.Cfg.Configuration();
        configuration.SetProperty(Environment.Dialect, typeof(MySQL57Dialect).AssemblyQualifiedName);
        configuration.SetProperty(Environment.Hbm2ddlKeyWords, "none");
        configuration.AddMapping(Mapping());
        return configuration.UseKeepAlive(o =>
        {
            o.ConnectionString = Cluster.ConnectionString(driver, string.Join(",", Cluster.Nodes.Select(n => n.Host)), Cluster.Nodes[0].Port);
            o.Driver = driver;
            o.MaxPoolSize = 8;
            o.KeepAliveInterval = TimeSpan.FromSeconds(1);
            o.ValidationTimeout = TimeSpan.FromSeconds(2);
            o.ConnectionTimeout = TimeSpan.FromSeconds(10);
            o.ShutdownGracePeriod = TimeSpan.Zero;
        }).BuildSessionFactory();
    }

    private static HbmMapping Mapping()
    {
        var mapper = new ModelMapper();
        mapper.Class<ClusterWrite>(c =>
        {
            c.Table(Table);
            c.Id(w => w.Id, m => m.Generator(Generators.Assigned));
            c.Property(w => w.Node, m => m.Length(16));
        });
        return mapper.CompileMappingForAllExplicitlyAddedEntities();
    }

    private static KeepAlivePool PoolOf(ISessionFactory factory) =>
        ((KeepAliveConnectionProvider)((global::NHibernate.Engine.ISessionFactoryImplementor)factory).ConnectionProvider).Pool!;

    /// <summary>Workers that run units of work with client-made keys, recording what each caller saw, until stopped.</summary>
    private sealed class WorkRun : ClusterWriteRun
    {
        private readonly ISessionFactory _factory;

        public WorkRun(ISessionFactory factory, TestCluster cluster)
            : base(cluster, Table)
        {
            _factory = factory;
            Start(Workers);
        }

        protected override string WriteOne(string id)
        {
            using var session = _factory.OpenSession();
            using var transaction = session.BeginTransaction();
            var node = session.CreateSQLQuery("SELECT CAST(@@wsrep_node_name AS CHAR(16))").UniqueResult<string>();
            session.Save(new ClusterWrite { Id = id, Node = node });
            transaction.Commit();
            return node;
        }

        protected override int? ErrorNumber(Exception error) => ServerErrors.Number(error);
    }
}
