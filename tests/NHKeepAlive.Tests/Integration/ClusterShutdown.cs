using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Integration.Cluster;

/// <summary>
/// Stops the Galera cluster that a cluster fixture started (<see cref="TestCluster.Shared"/>) once every
/// fixture of this namespace has run: all the cluster fixtures share one start (about 11-20 s), and the
/// cluster does not run (nor its HAProxy health checks fork every second) beside the rest of the suite.
/// A cluster named by NHK_CLUSTER_STATE was started by someone else and is left alone.
/// </summary>
/// <remarks>Every cluster fixture belongs in this namespace.</remarks>
[SetUpFixture]
public sealed class ClusterShutdown
{
    [OneTimeTearDown]
    public void StopCluster() => TestCluster.StopShared();
}
