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
            _inTransactionFlag = [Enum.ToObject(flags, 1)];
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

    public override bool? IsInTransaction(DbConnection connection)
    {
        if (_inTransactionFlag is null)
            return null;
        try
        {
            var driver = _driverField!.GetValue(connection);
            return driver is null ? null : (bool)_hasStatus!.Invoke(driver, _inTransactionFlag)!;
        }
        catch (Exception e) when (e is TargetInvocationException or InvalidCastException or NullReferenceException)
        {
            return null;
        }
    }

    public override void RollBack(DbConnection connection) => ExecuteRollback(connection);
}
