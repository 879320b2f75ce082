using System;
using System.Threading;
using NUnit.Framework;

namespace NHKeepAlive.Tests;

/// <summary>
/// The chaos proxy runs in the test process on the thread pool, beside callers that block on sync
/// driver calls (MySql.Data's sync API blocks pool threads on its own async code). With the default
/// minimum of one thread per core the proxy could starve and delay bytes in ways no real network
/// does, so the tests start with enough threads for every concurrent caller and the proxy.
/// </summary>
[SetUpFixture]
public sealed class AssemblySetup
{
    [OneTimeSetUp]
    public void EnoughThreads()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 96), Math.Max(io, 96));
    }
}
