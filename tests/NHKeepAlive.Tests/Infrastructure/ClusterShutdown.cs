using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests;

/// <summary>
/// Stops the Galera cluster that a cluster fixture started (<see cref="TestCluster.Shared"/>) once every
/// test has run, so that all the cluster fixtures share one start (about 20 s) and none is left running.
/// A cluster named by NHK_CLUSTER_STATE was started by someone else and is left alone.
/// </summary>
[SetUpFixture]
public sealed class ClusterShutdown
{
    [OneTimeTearDown]
    public void StopCluster() => TestCluster.StopShared();
}
