using System;
using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive.Drivers;

/// <summary>MySqlConnector, bound by reflection.</summary>
internal sealed class MySqlConnectorAdapter : ReflectionDriverAdapter
{
    private readonly Func<DbConnection, CancellationToken, Task<bool>> _pingAsync;
    private readonly PropertyInfo? _currentTransaction;
    private readonly Func<DbConnection, CancellationToken, ValueTask>? _resetConnection;
    private readonly ConditionalWeakTable<DbConnection, MySqlConnectorCommandObserver.Watch> _sessions = new();

    private MySqlConnectorAdapter(Type connectionType, DbProviderFactory factory)
        : base("MySqlConnector", connectionType, factory)
    {
        var pingAsync = connectionType.GetMethod("PingAsync", BindingFlags.Public | BindingFlags.Instance, null, [typeof(CancellationToken)], null)
            ?? throw new NotSupportedException("MySqlConnector: MySqlConnection.PingAsync(CancellationToken) is missing; this version is not supported.");
        _pingAsync = (Func<DbConnection, CancellationToken, Task<bool>>)CreateDelegate(pingAsync, typeof(Func<DbConnection, CancellationToken, Task<bool>>));

        // MySqlConnection.CurrentTransaction (internal): the MySqlTransaction the caller began and
        // left open. MySqlConnector keeps no server status flag, so plain-SQL transactions are not seen.
        _currentTransaction = connectionType.GetProperty("CurrentTransaction", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance);

        // MySqlConnection.ResetConnectionAsync(): COM_RESET_CONNECTION. It keeps the character set;
        // the database is restored by the pool.
        var reset = connectionType.GetMethod("ResetConnectionAsync", BindingFlags.Public | BindingFlags.Instance, null, [typeof(CancellationToken)], null);
        if (reset is not null && reset.ReturnType == typeof(ValueTask))
            _resetConnection = (Func<DbConnection, CancellationToken, ValueTask>)CreateDelegate(reset, typeof(Func<DbConnection, CancellationToken, ValueTask>));
    }

    public override MySqlDriver Kind => MySqlDriver.MySqlConnector;

    public override bool KnowsTransactionState => _currentTransaction is not null;

    public override bool CanResetSession => _resetConnection is not null;

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

    /// <summary>
    /// Watches the connection's statements (<see cref="MySqlConnectorCommandObserver"/>): MySqlConnector
    /// keeps none of the server's status flags. Without its tracing (before 2.1), changes go unseen and
    /// the pool resets every return. The first connection to a server asks it, in one round trip, the
    /// isolation level sessions open with and the wait_timeout; that query is also the check that the
    /// tracing sees the server's connections. The connections after it (<paramref name="known"/>) ask nothing.
    /// An isolation level known from a connection opened before a DBA changed the server's default is at most
    /// 5 minutes old (<see cref="SessionFacts"/>): a transaction may then leave a connection at that older default,
    /// which is what every connection opened before the change has anyway; a caller's own level is never kept.
    /// </summary>
    public override SessionSetup? PrepareSession(DbConnection connection, SessionFacts? known)
    {
        ForgetSession(connection);
        var observer = MySqlConnectorCommandObserver.Instance;
        if (!observer.Sees || ServerThreadId(connection) is not { } id)
            return new SessionSetup(null, ChangesReported: false);
        if (known is { ChangesReported: false })
            return new SessionSetup(null, ChangesReported: false); // the tracing was seen not to report this server's connections
        var watch = observer.Start(id);
        SessionFacts? learned = null;
        try
        {
            if (known is null)
            {
                // MySqlConnector begins every transaction with SET SESSION TRANSACTION ISOLATION LEVEL
                // (REPEATABLE READ when none is asked for): on a session that opened at REPEATABLE READ, such
                // a transaction leaves it as it was, so that NHibernate's units of work stay on the fast path.
                var (isolation, waitTimeout) = ReadSessionDefaults(connection);

                // That query is also the check that the watch sees this connection's commands: behind a proxy
                // that reports another connection id, say, it would see nothing and call every loan clean.
                learned = new SessionFacts(null, observer.HasSeen(watch), isolation, waitTimeout);
                if (!learned.ChangesReported)
                {
                    observer.Stop(watch);
                    return new SessionSetup(null, ChangesReported: false, learned);
                }
            }

            if ((learned ?? known)!.IsolationAtOpen == "REPEATABLE-READ" && _currentTransaction is { } current)
            {
                var weak = new WeakReference<DbConnection>(connection);
                watch.TransactionLeavesSessionClean = () =>
                    weak.TryGetTarget(out var target) && current.GetValue(target) is DbTransaction transaction
                    && transaction.IsolationLevel is IsolationLevel.Unspecified or IsolationLevel.RepeatableRead;
            }
        }
        catch
        {
            observer.Stop(watch);
            throw;
        }

        _sessions.Add(connection, watch);
        return new SessionSetup(null, ChangesReported: true, learned);
    }

    // The name of the session isolation variable this server knew last (MariaDB's tx_isolation, MySQL 8's transaction_isolation).
    private volatile string _isolationVariable = "tx_isolation";

    /// <summary>The session's isolation level as the server names it (null when neither name is known) and its wait_timeout, in one query.</summary>
    private (string? Isolation, TimeSpan? WaitTimeout) ReadSessionDefaults(DbConnection connection)
    {
        var first = _isolationVariable;
        foreach (var variable in new[] { first, first == "tx_isolation" ? "transaction_isolation" : "tx_isolation" })
        {
            try
            {
                using var command = connection.CreateCommand();

                // CAST: an integer, and text the driver need not decode from the variable's character set.
                command.CommandText = $"SELECT CAST(@@SESSION.{variable} AS CHAR), CAST(@@SESSION.wait_timeout AS SIGNED)";
                using var reader = command.ExecuteReader();
                if (!reader.Read())
                    return (null, null);
                var isolation = reader.IsDBNull(0) ? null : Convert.ToString(reader.GetValue(0), CultureInfo.InvariantCulture);
                TimeSpan? waitTimeout = reader.IsDBNull(1) ? null : TimeSpan.FromSeconds(Convert.ToDouble(reader.GetValue(1), CultureInfo.InvariantCulture));
                _isolationVariable = variable;
                return (isolation, waitTimeout);
            }
            catch (DbException)
            {
                // Unknown on this server: the other name.
            }
        }

        return (null, null);
    }

    /// <summary>Whether a statement seen since the last call may have changed the session (the call clears the record); null when the connection is not watched.</summary>
    public override bool? SessionMayHaveChanged(DbConnection connection) =>
        _sessions.TryGetValue(connection, out var watch) ? MySqlConnectorCommandObserver.Instance.TakeChanged(watch) : null;

    public override void ForgetSession(DbConnection connection)
    {
        if (_sessions.TryGetValue(connection, out var watch))
        {
            _sessions.Remove(connection);
            MySqlConnectorCommandObserver.Instance.Stop(watch);
        }
    }

    // Its only reset API is asynchronous: the returning caller waits for it (bounded by the pool's
    // validation watchdog), so that a returned connection is idle, clean, the moment Return ends.
    public override bool ResetSession(DbConnection connection, string? restore)
    {
        if (_resetConnection is null)
            return false;
#pragma warning disable CA2012 // Awaited at once, synchronously.
        _resetConnection(connection, CancellationToken.None).AsTask().GetAwaiter().GetResult();
#pragma warning restore CA2012
        if (restore is not null)
            Execute(connection, restore);

        return true;
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
