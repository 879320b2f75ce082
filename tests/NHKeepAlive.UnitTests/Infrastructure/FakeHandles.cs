using System.Data.Common;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>Reaching the fake driver's connection under a handle of a <see cref="FakePoolFixture"/>'s pool.</summary>
internal static class FakeHandles
{
    /// <summary>The fake driver's connection under <paramref name="connection"/> (take it before the handle is given back).</summary>
    public static FakeConnection Fake(this DbConnection connection) => (FakeConnection)connection.Physical();
}
