using System;
using System.ComponentModel;
using System.Data;
using System.Data.Common;
using MySql.Data.MySqlClient;

namespace NHKeepAlive.MySqlData;

/// <summary>
/// A MySql.Data command interceptor that shows NHKeepAlive every statement a pooled connection runs,
/// before it runs; it never handles a command itself. NHKeepAlive names it in the connection strings
/// of the connections it opens (<c>CommandInterceptors=</c>); applications do not use it directly.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class StatementInterceptor : BaseCommandInterceptor
{
    // Set by NHKeepAlive (by reflection, so that NHKeepAlive itself never loads MySql.Data's types)
    // before it opens a connection that names this interceptor.
    private static volatile Action<DbConnection, string?>? s_observer;

    internal static Action<DbConnection, string?>? Observer
    {
        get => s_observer;
        set => s_observer = value;
    }

    /// <inheritdoc />
    public override bool ExecuteScalar(string sql, ref object returnValue) => Observe(sql);

    /// <inheritdoc />
    public override bool ExecuteNonQuery(string sql, ref int returnValue) => Observe(sql);

    /// <inheritdoc />
    public override bool ExecuteReader(string sql, CommandBehavior behavior, ref MySqlDataReader returnValue) => Observe(sql);

    private bool Observe(string? sql)
    {
        if (ActiveConnection is { } connection)
            s_observer?.Invoke(connection, sql);
        return false; // the command runs as it would have
    }
}
