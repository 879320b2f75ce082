using System;
using System.Data.Common;
using System.Threading;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.NHibernate.Tests.Infrastructure;

/// <summary>Checks that a pool accounts for every physical connection the server sees for the test user.</summary>
internal static class PoolAccounting
{
    /// <summary>
    /// Asserts that the pool's active + idle equals the test user's connections on the server (other
    /// than the admin's). The stock drivers' own pools are emptied first, so that connections left by a
    /// stock factory in the same test do not count; the server may take a moment to forget a closed
    /// connection, so the comparison is retried for a bounded time until it holds.
    /// </summary>
    public static void AssertPoolMatchesServer(ServerAdmin admin, KeepAlivePool pool)
    {
        MySql.Data.MySqlClient.MySqlConnection.ClearAllPools();
        MySqlConnector.MySqlConnection.ClearAllPools();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            var stats = pool.GetStatistics();
            var server = admin.ConnectionIds().Count;
            if (stats.Active + stats.Idle == server)
                return;
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"pool '{pool.Name}' accounts for {stats.Active + stats.Idle} connections ({stats}), the server shows {server} for the test user");
                return;
            }

            Thread.Sleep(50);
        }
    }

    /// <summary>The server's thread id of an open connection of either driver.</summary>
    public static long ServerThreadOf(DbConnection connection) => connection switch
    {
        KeepAliveConnection handle => ServerThreadOf(handle.InnerConnection),
        MySql.Data.MySqlClient.MySqlConnection c => c.ServerThread,
        MySqlConnector.MySqlConnection c => c.ServerThread,
        _ => throw new ArgumentException($"not a MySQL connection: {connection.GetType()}", nameof(connection)),
    };
}
