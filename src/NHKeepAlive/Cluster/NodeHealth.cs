using System;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive;

/// <summary>
/// What makes a server unfit for new work although it answers pings: a Galera node that refuses
/// queries, is not synced or not in the primary component, or a server that is read-only when the
/// pool writes. Learned with one query at connect, on validation past the bypass window and by the
/// keepalive (never per checkout), and from the errors callers meet.
/// </summary>
internal static class NodeHealth
{
    // Integers only, so that no driver decodes a character set (MySql.Data 8.0 cannot read utf8mb3).
    // A server without wsrep (or without these information_schema tables) answers NULL or an error. So does
    // one whose build has wsrep but does not run it (wsrep_on=OFF, Debian's and most distributions' plain
    // MariaDB): it reports wsrep_ready OFF, which must not make a plain server of a host list unfit.
    private const string WsrepOn = "EXISTS (SELECT 1 FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'WSREP_ON' AND VARIABLE_VALUE = 'ON')";
    private const string FullQuery =
        "SELECT CAST(@@GLOBAL.read_only AS SIGNED), " +
        "(SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE' AND " + WsrepOn + "), " +
        "(SELECT IF(VARIABLE_VALUE = 'ON', 1, 0) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_READY' AND " + WsrepOn + "), " +
        "(SELECT IF(VARIABLE_VALUE = 'NONE', 0, 1) FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'WSREP_REJECT_QUERIES' AND " + WsrepOn + ")";

    private const string ReadOnlyQuery = "SELECT CAST(@@GLOBAL.read_only AS SIGNED), NULL, NULL, NULL";

    private const int WsrepSynced = 4;

    /// <summary>
    /// Error numbers that say the node, not the statement, is unfit: 1047 (WSREP has not yet prepared
    /// node for application use: refusing queries, not synced, or out of the primary component), 1180
    /// (a commit the node could not replicate), 1290/1836/1792 (read-only).
    /// </summary>
    public static string? Classify(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            switch (DisconnectClassifier.ErrorNumber(e))
            {
                case 1047:
                    return "the node refuses queries (1047: not synced, out of the primary component, or wsrep_reject_queries)";
                case 1180:
                    return "the node could not commit (1180: it lost the cluster)";
                case 1290:
                case 1836:
                case 1792:
                    return "the server is read-only (1290)";
            }
        }

        return null;
    }

    /// <summary>Runs the health query: null when the node is fit, else why not.</summary>
    public static async ValueTask<string?> CheckAsync(DbConnection connection, bool allowReadOnly, TimeSpan timeout, bool async)
    {
        try
        {
            return await RunAsync(connection, FullQuery, allowReadOnly, timeout, async).ConfigureAwait(false);
        }
        catch (DbException e) when (DisconnectClassifier.ErrorNumber(e) is 1109 or 1146 or 1142 or 1227)
        {
            // No information_schema status tables (MySQL 8) or no right to read them: read_only only.
            return await RunAsync(connection, ReadOnlyQuery, allowReadOnly, timeout, async).ConfigureAwait(false);
        }
        catch (DbException e) when (Classify(e) is { } unfit)
        {
            return unfit;
        }
    }

    private static async ValueTask<string?> RunAsync(DbConnection connection, string sql, bool allowReadOnly, TimeSpan timeout, bool async)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.CommandTimeout = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds));
        using var reader = async ? await command.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false) : command.ExecuteReader();
        if (!(async ? await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false) : reader.Read()))
            return null;
        long? Value(int i) => reader.IsDBNull(i) ? null : Convert.ToInt64(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
        var readOnly = Value(0);
        var state = Value(1);
        var ready = Value(2);
        var rejecting = Value(3);
        if (rejecting == 1)
            return "the node refuses queries (wsrep_reject_queries)";
        if (ready == 0)
            return "the node is not ready (wsrep_ready is OFF: out of the primary component)";
        if (state is { } s && s != WsrepSynced)
            return $"the node is not synced with its cluster (wsrep_local_state {s})";
        if (readOnly == 1 && !allowReadOnly)
            return "the server is read-only and the pool writes (set nhkeepalive.allow_read_only for a read pool)";
        return null;
    }
}
