using System.Data.Common;
using NHibernate.Driver;

namespace NHKeepAlive.NHibernate;

/// <summary>
/// NHibernate's <see cref="MySqlDataDriver"/> that, before every command, makes sure the connection
/// is alive when it comes from NHKeepAlive (see <see cref="KeepAlivePool.EnsureAlive"/>). It
/// protects sessions that hold one connection for their whole life
/// (<c>connection.release_mode=on_close</c>, or queries outside transactions in a long session),
/// which no pool ever sees again. <see cref="KeepAliveConnectionProvider"/> installs it in place of
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
}

/// <summary>
/// A driver for MySqlConnector (NHibernate has none built in) with the same protection of held
/// connections as <see cref="KeepAliveMySqlDataDriver"/>. The application references the
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
}

/// <summary>What the drivers do before each command.</summary>
internal static class HeldConnectionGuard
{
    public static void BeforeCommand(DbCommand command)
    {
        var connection = command.Connection;
        if (connection is null)
            return;

        // Connections from elsewhere (a user-supplied connection) are left alone.
        KeepAlivePool.OwnerOf(connection)?.EnsureAlive(connection, inTransaction: command.Transaction is not null);
    }
}
