using System.Data.Common;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>Reaching the physical connection under a <see cref="KeepAliveConnection"/>, as the pool's driver adapter sees it.</summary>
internal static class Handles
{
    /// <summary>
    /// The driver's connection under <paramref name="connection"/> if it is a pool's handle (throws
    /// <see cref="System.ObjectDisposedException"/> once the handle was given back: take it before), else
    /// <paramref name="connection"/> itself.
    /// </summary>
    public static DbConnection Physical(this DbConnection connection) =>
        connection is KeepAliveConnection handle ? handle.InnerConnection : connection;
}
