using System;
using System.Data;
using System.Data.Common;
using System.Threading;
using NHibernate;
using NHibernate.Driver;

namespace NHKeepAlive.NHibernate;

/// <summary>
/// NHibernate's <see cref="MySqlDataDriver"/> that, before every command and before a transaction
/// begins, makes sure the connection is alive when it comes from NHKeepAlive (see
/// <see cref="KeepAlivePool.EnsureAlive"/>). It protects sessions that hold one connection for their
/// whole life (<c>connection.release_mode=on_close</c>, or queries outside transactions in a long
/// session), which no pool ever sees again: <c>ISession.BeginTransaction()</c> on a connection that
/// died while idle begins the transaction on a reopened connection. <see cref="KeepAliveConnectionProvider"/> installs it in place of
/// <see cref="MySqlDataDriver"/> by itself.
/// </summary>
public class KeepAliveMySqlDataDriver : MySqlDataDriver
{
    /// <inheritdoc />
    /// <remarks>The driver's command, wrapped (<see cref="KeepAliveCommand"/>) so that it runs on the session's <see cref="KeepAliveConnection"/>.</remarks>
    public override DbCommand CreateCommand() => KeepAliveCommand.Wrap(base.CreateCommand());

    /// <inheritdoc />
    /// <remarks>The driver's own command, for the batcher (MySql.Data's batching takes only its own commands).</remarks>
    public override DbCommand UnwrapDbCommand(DbCommand command) => command is KeepAliveCommand wrapped ? wrapped.InnerCommand : command;

    /// <inheritdoc />
    public override void AdjustCommand(DbCommand command)
    {
        HeldConnectionGuard.BeforeCommand(command);
        base.AdjustCommand(command);
    }

    /// <inheritdoc />
    public override DbTransaction BeginTransaction(IsolationLevel isolationLevel, DbConnection connection)
    {
        HeldConnectionGuard.BeforeTransaction(connection);
        try
        {
            return base.BeginTransaction(isolationLevel, connection);
        }
        catch (Exception e) when (HeldConnectionGuard.Report(connection, e))
        {
            throw; // never reached: Report returns false, so the error goes on untouched
        }
    }
}

/// <summary>
/// A driver for MySqlConnector (NHibernate has none built in) with the same protection of held
/// connections as <see cref="KeepAliveMySqlDataDriver"/> (before every command and before a
/// transaction begins). The application references the
/// MySqlConnector package; NHibernate loads it by name.
/// </summary>
public class KeepAliveMySqlConnectorDriver : ReflectionBasedDriver
{
    /// <summary>Binds to the MySqlConnector assembly.</summary>
    public KeepAliveMySqlConnectorDriver()
        : base("MySqlConnector", "MySqlConnector", "MySqlConnector.MySqlConnection", "MySqlConnector.MySqlCommand")
    {
    }

    /// <inheritdoc />
    public override bool UseNamedPrefixInSql => true;

    /// <inheritdoc />
    public override bool UseNamedPrefixInParameter => true;

    /// <inheritdoc />
    public override string NamedPrefix => "@";

    /// <inheritdoc />
    public override bool SupportsMultipleOpenReaders => false;

    /// <inheritdoc />
    public override bool SupportsMultipleQueries => true;

    /// <inheritdoc />
    public override bool RequiresTimeSpanForTime => true;

    /// <inheritdoc />
    public override System.DateTime MinDate => new(1000, 1, 1);

    /// <inheritdoc />
    protected override bool SupportsPreparingCommands => false;

    /// <inheritdoc />
    /// <remarks>The driver's command, wrapped (<see cref="KeepAliveCommand"/>) so that it runs on the session's <see cref="KeepAliveConnection"/>.</remarks>
    public override DbCommand CreateCommand() => KeepAliveCommand.Wrap(base.CreateCommand());

    /// <inheritdoc />
    /// <remarks>The driver's own command, for the batcher (MySql.Data's batching takes only its own commands).</remarks>
    public override DbCommand UnwrapDbCommand(DbCommand command) => command is KeepAliveCommand wrapped ? wrapped.InnerCommand : command;

    /// <inheritdoc />
    public override void AdjustCommand(DbCommand command)
    {
        HeldConnectionGuard.BeforeCommand(command);
        base.AdjustCommand(command);
    }

    /// <inheritdoc />
    public override DbTransaction BeginTransaction(IsolationLevel isolationLevel, DbConnection connection)
    {
        HeldConnectionGuard.BeforeTransaction(connection);
        try
        {
            return base.BeginTransaction(isolationLevel, connection);
        }
        catch (Exception e) when (HeldConnectionGuard.Report(connection, e))
        {
            throw; // never reached: Report returns false, so the error goes on untouched
        }
    }
}

/// <summary>
/// What the drivers do before each command and before each transaction, and how errors NHibernate
/// meets reach the pool. NHibernate's <c>AdoTransaction.Begin</c> (used by every built-in transaction
/// factory) begins the ADO.NET transaction through <c>IDriver.BeginTransaction</c>, so a driver override
/// sees every <c>ISession.BeginTransaction()</c> on every connection, held or not, whatever
/// <c>transaction.factory_class</c> says.
/// </summary>
/// <remarks>
/// NHibernate never passes an error to the connection provider: it converts it with the session
/// factory's <c>ISQLExceptionConverter</c> and closes the connection later without it. So the guard
/// remembers, for the current flow of execution, the connection of the last command or transaction
/// begun (<see cref="Remember"/>), and <see cref="KeepAliveSqlExceptionConverter"/> reports the error it
/// converts against that connection (<see cref="KeepAlivePool.ReportFailure"/>).
/// <para>
/// The memory is a box held in an <see cref="AsyncLocal{T}"/>. <c>ISession.BeginTransaction()</c> is
/// synchronous, so the box it puts there lives in the caller's own flow, and NHibernate's async methods
/// that the caller awaits afterwards write the command's connection into that same box: statements of a
/// transaction are reported with the sync and the async API. A statement run outside a transaction
/// through the async API gets its box inside NHibernate's async preparation, which ends before the
/// error is converted: it is not reported (validation and the keepalive still find an unfit node).
/// </para>
/// </remarks>
internal static class HeldConnectionGuard
{
    private static readonly INHibernateLogger s_log = NHibernateLogger.For(typeof(HeldConnectionGuard));
    private static readonly AsyncLocal<LastConnection?> s_last = new();

    /// <summary>
    /// Before a transaction begins: no transaction is open on the connection yet, so a connection
    /// that died while idle is reopened in place and the transaction begins on the new one.
    /// </summary>
    public static void BeforeTransaction(DbConnection connection)
    {
        if (connection is null)
            return;
        Remember(connection, fresh: true);

        // Connections from elsewhere (a user-supplied connection) are left alone.
        KeepAlivePool.OwnerOf(connection)?.EnsureAlive(connection, inTransaction: false);
    }

    public static void BeforeCommand(DbCommand command)
    {
        var connection = command.Connection;
        if (connection is null)
            return;
        Remember(connection, fresh: false);

        // Connections from elsewhere (a user-supplied connection) are left alone.
        KeepAlivePool.OwnerOf(connection)?.EnsureAlive(connection, inTransaction: command.Transaction is not null);
    }

    /// <summary>The connection of the last command or transaction begun in this flow of execution, if any.</summary>
    public static DbConnection? Current => s_last.Value?.Connection;

    /// <summary>
    /// Reports <paramref name="failure"/> to the pool that owns the connection of the last command or
    /// transaction begun in this flow (nothing for connections of no pool). Never throws.
    /// </summary>
    public static void ReportCurrent(Exception? failure)
    {
        if (failure is not null && Current is { } connection)
            Report(connection, failure);
    }

    /// <summary>
    /// Reports <paramref name="failure"/> on <paramref name="connection"/> to its pool, if a pool owns it.
    /// Never throws; returns false, so that it can serve as an exception filter that lets the error go on.
    /// </summary>
    public static bool Report(DbConnection connection, Exception failure)
    {
        if (connection is null || failure is null || failure is ConnectionLostException or ConnectException)
            return false; // the pool's own verdicts need no report
        try
        {
            KeepAlivePool.OwnerOf(connection)?.ReportFailure(connection, failure);
        }
#pragma warning disable CA1031 // Reporting must never replace the caller's error with another.
        catch (Exception e)
#pragma warning restore CA1031
        {
            s_log.Warn(e, "NHKeepAlive: could not report an error to the pool; the caller still gets the error");
        }

        return false;
    }

    /// <summary>Records <paramref name="connection"/> as this flow's current one: in a new box (<paramref name="fresh"/>, or none yet), else in the box the flow has.</summary>
    private static void Remember(DbConnection connection, bool fresh)
    {
        var box = s_last.Value;
        if (fresh || box is null)
            s_last.Value = new LastConnection(connection);
        else
            box.Connection = connection;
    }

    /// <summary>
    /// A box, so that NHibernate's async methods can write into the one their caller's flow holds. It holds
    /// the connection weakly: a session the application drops must not be kept alive by the flow that used it
    /// last, or its connection could never be taken back (see <see cref="KeepAliveConnection"/>).
    /// </summary>
    private sealed class LastConnection(DbConnection connection)
    {
        private readonly WeakReference<DbConnection> _connection = new(connection);

        public DbConnection? Connection
        {
            get => _connection.TryGetTarget(out var connection) ? connection : null;
            set => _connection.SetTarget(value!);
        }
    }
}
