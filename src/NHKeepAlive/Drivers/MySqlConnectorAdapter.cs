using System;
using System.Data.Common;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive.Drivers;

/// <summary>MySqlConnector, bound by reflection.</summary>
internal sealed class MySqlConnectorAdapter : ReflectionDriverAdapter
{
    private readonly Func<DbConnection, CancellationToken, Task<bool>> _pingAsync;
    private readonly PropertyInfo? _currentTransaction;

    private MySqlConnectorAdapter(Type connectionType, DbProviderFactory factory)
        : base("MySqlConnector", connectionType, factory)
    {
        var pingAsync = connectionType.GetMethod("PingAsync", BindingFlags.Public | BindingFlags.Instance, null, [typeof(CancellationToken)], null)
            ?? throw new NotSupportedException("MySqlConnector: MySqlConnection.PingAsync(CancellationToken) is missing; this version is not supported.");
        _pingAsync = (Func<DbConnection, CancellationToken, Task<bool>>)CreateDelegate(pingAsync, typeof(Func<DbConnection, CancellationToken, Task<bool>>));

        // MySqlConnection.CurrentTransaction (internal): the MySqlTransaction the caller began and
        // left open. MySqlConnector keeps no server status flag, so plain-SQL transactions are not seen.
        _currentTransaction = connectionType.GetProperty("CurrentTransaction", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance);
    }

    public override MySqlDriver Kind => MySqlDriver.MySqlConnector;

    public static MySqlConnectorAdapter? TryCreate()
    {
        var connectionType = LoadType("MySqlConnector.MySqlConnection, MySqlConnector");
        var factory = FactoryInstance(connectionType?.Assembly.GetType("MySqlConnector.MySqlConnectorFactory"));
        return connectionType is null || factory is null ? null : new MySqlConnectorAdapter(connectionType, factory);
    }

    protected override Task<bool> PingCoreAsync(DbConnection connection, CancellationToken cancellationToken) =>
        _pingAsync(connection, cancellationToken);

    public override bool? IsInTransaction(DbConnection connection)
    {
        if (_currentTransaction is null)
            return null;
        try
        {
            return _currentTransaction.GetValue(connection) is not null;
        }
        catch (TargetInvocationException)
        {
            return null;
        }
    }

    public override void RollBack(DbConnection connection)
    {
        // Roll back through the transaction object, so that the driver forgets it too; a bare
        // ROLLBACK would leave CurrentTransaction set and the next BeginTransaction would fail.
        if (_currentTransaction?.GetValue(connection) is DbTransaction transaction)
        {
            transaction.Rollback();
            transaction.Dispose();
        }
        else
        {
            ExecuteRollback(connection);
        }
    }
}
