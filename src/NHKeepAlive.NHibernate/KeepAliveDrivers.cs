using System.Data;
using System.Data.Common;
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
    public override void AdjustCommand(DbCommand command)
    {
        HeldConnectionGuard.BeforeCommand(command);
        base.AdjustCommand(command);
    }

    /// <inheritdoc />
    public override DbTransaction BeginTransaction(IsolationLevel isolationLevel, DbConnection connection)
    {
        HeldConnectionGuard.BeforeTransaction(connection);
        return base.BeginTransaction(isolationLevel, connection);
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
    public override void AdjustCommand(DbCommand command)
    {
        HeldConnectionGuard.BeforeCommand(command);
        base.AdjustCommand(command);
    }

    /// <inheritdoc />
    public override DbTransaction BeginTransaction(IsolationLevel isolationLevel, DbConnection connection)
    {
        HeldConnectionGuard.BeforeTransaction(connection);
        return base.BeginTransaction(isolationLevel, connection);
    }
}

/// <summary>
/// What the drivers do before each command and before each transaction. NHibernate's
/// <c>AdoTransaction.Begin</c> (used by every built-in transaction factory) begins the ADO.NET
/// transaction through <c>IDriver.BeginTransaction</c>, so a driver override sees every
/// <c>ISession.BeginTransaction()</c> on every connection, held or not, whatever
/// <c>transaction.factory_class</c> says.
/// </summary>
internal static class HeldConnectionGuard
{
    /// <summary>
    /// Before a transaction begins: no transaction is open on the connection yet, so a connection
    /// that died while idle is reopened in place and the transaction begins on the new one.
    /// </summary>
    public static void BeforeTransaction(DbConnection connection)
    {
        if (connection is null)
            return;

        // Connections from elsewhere (a user-supplied connection) are left alone.
        KeepAlivePool.OwnerOf(connection)?.EnsureAlive(connection, inTransaction: false);
    }

    public static void BeforeCommand(DbCommand command)
    {
        var connection = command.Connection;
        if (connection is null)
            return;

        // Connections from elsewhere (a user-supplied connection) are left alone.
        KeepAlivePool.OwnerOf(connection)?.EnsureAlive(connection, inTransaction: command.Transaction is not null);
    }
}
