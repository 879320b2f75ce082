using System;
using System.Data.Common;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive.Drivers;

/// <summary>MySql.Data (Oracle's Connector/NET), bound by reflection.</summary>
internal sealed class MySqlDataAdapter : ReflectionDriverAdapter
{
    private readonly Func<DbConnection, Task<bool>>? _pingAsync;
    private readonly FieldInfo? _driverField;
    private readonly MethodInfo? _hasStatus;
    private readonly object[]? _inTransactionFlag;
    private readonly object[]? _autocommitFlag;
    private readonly object[]? _stateChangedFlag;
    private readonly MethodInfo? _reset;

    private MySqlDataAdapter(Type connectionType, DbProviderFactory factory)
        : base("MySql.Data", connectionType, factory)
    {
        var pingAsync = connectionType.GetMethod("PingAsync", BindingFlags.Public | BindingFlags.Instance, null, Type.EmptyTypes, null);
        if (pingAsync is not null && pingAsync.ReturnType == typeof(Task<bool>))
            _pingAsync = (Func<DbConnection, Task<bool>>)CreateDelegate(pingAsync, typeof(Func<DbConnection, Task<bool>>));

        // MySqlConnection.driver.HasStatus(ServerStatusFlags.InTransaction): the status flag the
        // server sends in every OK packet, so it also sees a START TRANSACTION sent as plain SQL.
        _driverField = connectionType.GetField("driver", BindingFlags.NonPublic | BindingFlags.Instance);
        var flags = connectionType.Assembly.GetType("MySql.Data.MySqlClient.ServerStatusFlags");
        _hasStatus = _driverField?.FieldType.GetMethod("HasStatus", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance);
        if (flags is not null && _hasStatus is not null)
        {
            _inTransactionFlag = [Enum.ToObject(flags, 1)];     // SERVER_STATUS_IN_TRANS
            _autocommitFlag = [Enum.ToObject(flags, 2)];        // SERVER_STATUS_AUTOCOMMIT
            _stateChangedFlag = [Enum.ToObject(flags, 0x4000)]; // SERVER_SESSION_STATE_CHANGED
        }

        // Driver.Reset(): COM_CHANGE_USER, what MySql.Data's own pool runs for ConnectionReset=true.
        _reset = _driverField?.FieldType.GetMethod("Reset", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance, null, Type.EmptyTypes, null);
    }

    public override MySqlDriver Kind => MySqlDriver.MySqlData;

    public static MySqlDataAdapter? TryCreate()
    {
        var connectionType = LoadType("MySql.Data.MySqlClient.MySqlConnection, MySql.Data");
        var factory = FactoryInstance(connectionType?.Assembly.GetType("MySql.Data.MySqlClient.MySqlClientFactory"));
        return connectionType is null || factory is null ? null : new MySqlDataAdapter(connectionType, factory);
    }

    protected override Task<bool> PingCoreAsync(DbConnection connection, CancellationToken cancellationToken) =>
        _pingAsync is null ? Task.FromResult(PingSync(connection)) : _pingAsync(connection);

    public override bool? IsInTransaction(DbConnection connection) => HasStatus(connection, _inTransactionFlag);

    /// <summary>
    /// From the status flags of the server's last reply: autocommit off (it stays off in every reply
    /// after), or a session change by the last statement (SERVER_SESSION_STATE_CHANGED, which
    /// <see cref="PrepareSession"/> turns on). The driver keeps only the last reply's flags: a change
    /// followed by other statements, and named locks (never tracked by the server), are not seen.
    /// </summary>
    public override bool? SessionMayHaveChanged(DbConnection connection)
    {
        var autocommit = HasStatus(connection, _autocommitFlag);
        var changed = HasStatus(connection, _stateChangedFlag);
        return autocommit is null || changed is null ? null : autocommit == false || changed == true;
    }

    public override SessionSetup? PrepareSession(DbConnection connection)
    {
        string text;
        try
        {
            using var command = connection.CreateCommand();

            // Binary, so that MySql.Data 8.0 need not decode MariaDB's utf8mb3 names.
            command.CommandText = "SET SESSION session_track_state_change = 1; SELECT CAST(CONCAT_WS(' ', @@character_set_client, @@collation_connection, IFNULL(@@character_set_results, 'NULL')) AS BINARY)";
            text = command.ExecuteScalar() switch
            {
                byte[] bytes => System.Text.Encoding.ASCII.GetString(bytes),
                var other => Convert.ToString(other, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty,
            };
        }
        catch (DbException)
        {
            // A server without session state tracking (MySQL 5.6, MariaDB before 10.2): changes go unreported.
            return new SessionSetup(null, ChangesReported: false);
        }

        // DO 0 last: its reply, the one the driver keeps, reports no session change of our own making.
        var parts = text.Split(' ');
        if (parts.Length != 3)
            return new SessionSetup("SET SESSION session_track_state_change = 1; DO 0", ChangesReported: true);
        var results = parts[2] == "NULL" ? "NULL" : $"'{parts[2]}'";
        return new SessionSetup($"SET SESSION session_track_state_change = 1, character_set_client = '{parts[0]}', collation_connection = '{parts[1]}', character_set_results = {results}; DO 0", ChangesReported: true);
    }

    public override bool ResetSession(DbConnection connection, string? restore)
    {
        var driver = _reset is null ? null : _driverField!.GetValue(connection);
        if (driver is null)
            return false;
        try
        {
            _reset!.Invoke(driver, null);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
        }

        if (restore is not null)
        {
            using var command = connection.CreateCommand();
            command.CommandText = restore;
            command.ExecuteNonQuery();
        }

        return true;
    }

    private bool? HasStatus(DbConnection connection, object[]? flag)
    {
        if (flag is null)
            return null;
        try
        {
            var driver = _driverField!.GetValue(connection);
            return driver is null ? null : (bool)_hasStatus!.Invoke(driver, flag)!;
        }
        catch (Exception e) when (e is TargetInvocationException or InvalidCastException or NullReferenceException)
        {
            return null;
        }
    }

    public override void RollBack(DbConnection connection) => ExecuteRollback(connection);
}
