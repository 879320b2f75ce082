using NUnit.Framework;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>
/// Base of the fixtures on the shared test cluster (<see cref="TestCluster.Shared"/>): started once, or
/// the fixture skipped with the reason; the fixture's table created; the cluster restored after each test.
/// </summary>
/// <param name="table">The table the fixture writes to.</param>
public abstract class ClusterTest(string table)
{
    private protected TestCluster Cluster { get; private set; } = null!;

    [OneTimeSetUp]
    public void StartCluster()
    {
        Cluster = TestCluster.Shared;
        if (Cluster.SkipReason is { } reason)
            Assert.Ignore(reason);
        ClusterWriteRun.CreateTable(Cluster, table);
    }

    [TearDown]
    public void RestoreCluster()
    {
        if (Cluster.SkipReason is null)
            Cluster.Restore();
    }
}
