using System;
using System.Data;
using System.Data.Common;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive.Drivers;

/// <summary>
/// What the pool needs from a MySQL ADO.NET driver: the seam between the pool and MySql.Data or
/// MySqlConnector (see <see cref="ReflectionDriverAdapter"/>), and what tests replace.
/// </summary>
internal abstract class DriverAdapter
{
    /// <summary>The driver's name as users know it: MySql.Data or MySqlConnector.</summary>
    public abstract string Name { get; }

    /// <summary>Which driver this is.</summary>
    public abstract MySqlDriver Kind { get; }

    private static readonly Lazy<DriverAdapter?> s_mySqlData = new(MySqlDataAdapter.TryCreate);
    private static readonly Lazy<DriverAdapter?> s_mySqlConnector = new(MySqlConnectorAdapter.TryCreate);

    /// <summary>Finds the driver that <paramref name="kind"/> asks for among the assemblies the application can load (see <see cref="MySqlDriverChoice"/>).</summary>
    public static DriverAdapter Resolve(MySqlDriver kind)
    {
        switch (kind)
        {
            case MySqlDriver.MySqlData:
                return s_mySqlData.Value ?? throw NotReferenced("MySql.Data", "MySqlConnector");
            case MySqlDriver.MySqlConnector:
                return s_mySqlConnector.Value ?? throw NotReferenced("MySqlConnector", "MySql.Data");
            case MySqlDriver.Auto:
                return s_mySqlData.Value ?? s_mySqlConnector.Value
                    ?? throw new KeepAliveConfigurationException(
                        "NHKeepAlive found no MySQL driver: reference the MySql.Data package (26.10.0 or later for MariaDB 10.6+) or the MySqlConnector package in the application.");
            default:
                throw new KeepAliveConfigurationException($"Unknown driver '{kind}': use Auto, MySqlData or MySqlConnector.");
        }
    }

    /// <summary>
    /// Parses the connection string once, turns the driver's own pooling off, and names the pool
    /// after its server, port and database. A malformed string gets a message without the password.
    /// </summary>
    public abstract PreparedConnectionString PrepareConnectionString(string connectionString);

    /// <summary>
    /// <paramref name="connectionString"/> with its database (<c>Database</c>, or any alias the driver knows, such as
    /// <c>Initial Catalog</c>) replaced by <paramref name="database"/>, every other option kept.
    /// </summary>
    public virtual string WithDatabase(string connectionString, string database)
    {
        var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
        foreach (var alias in new[] { "Initial Catalog", "Database" })
            builder.Remove(alias);
        builder["Database"] = database;
        return builder.ConnectionString;
    }

    /// <summary>A new, closed connection.</summary>
    public abstract DbConnection CreateConnection(string connectionString);

    /// <summary>A new command of the driver's, bound to no connection.</summary>
    public virtual DbCommand CreateCommand() => CreateConnection(string.Empty).CreateCommand();

    /// <summary>Sends the protocol ping. True when the server answered; false (never an exception) when the connection is dead or the ping was cancelled.</summary>
    public abstract ValueTask<bool> PingAsync(DbConnection connection, bool async, CancellationToken cancellationToken);

    /// <summary>
    /// Whether the connection is inside a transaction, if the driver can tell without a round trip;
    /// null when it cannot (the pool then rolls back unconditionally).
    /// </summary>
    public abstract bool? IsInTransaction(DbConnection connection);

    /// <summary>Rolls back whatever transaction the connection is in, and clears the driver's own record of it.</summary>
    public abstract void RollBack(DbConnection connection);

    /// <summary>
    /// Whether the caller may have changed the session (autocommit off, a session variable, a
    /// temporary table, the database), from what the driver already knows: true when it did, false
    /// when the driver's record shows it did not, null when the driver keeps no such record (the pool
    /// then resets, to be safe).
    /// </summary>
    public virtual bool? SessionMayHaveChanged(DbConnection connection) => null;

    /// <summary>
    /// Readies a newly opened connection for <see cref="ResetSession"/>: turns on what lets the server
    /// report session changes, and returns the statement that restores, after a reset, what the driver
    /// set when it opened (character sets), or null when a reset keeps it. With <paramref name="known"/>
    /// (what an earlier connection's setup learned from the same server with the same connection string) it
    /// asks the server nothing it already told; without, it learns that too, <c>wait_timeout</c> included,
    /// in the same round trip (<see cref="SessionSetup.Learned"/>).
    /// </summary>
    public virtual SessionSetup? PrepareSession(DbConnection connection, SessionFacts? known) => null;

    /// <summary>
    /// Resets the session as if newly opened (COM_RESET_CONNECTION, or COM_CHANGE_USER where the
    /// driver offers only that), then runs <paramref name="restore"/>. False when the driver offers no
    /// reset: the pool then reopens the connection.
    /// </summary>
    public virtual bool ResetSession(DbConnection connection, string? restore) => false;

    /// <summary>Drops what <see cref="PrepareSession"/> keeps for a connection the pool has closed.</summary>
    public virtual void ForgetSession(DbConnection connection)
    {
    }

    /// <summary>Runs the node health query (<see cref="NodeHealth"/>): null when the node is fit, else why not.</summary>
    public virtual ValueTask<string?> CheckNodeAsync(DbConnection connection, bool allowReadOnly, TimeSpan timeout, bool async) =>
        NodeHealth.CheckAsync(connection, allowReadOnly, timeout, async);

    /// <summary>The server's id for the connection (what SHOW PROCESSLIST and KILL use), if the driver exposes it.</summary>
    public abstract int? ServerThreadId(DbConnection connection);

    /// <summary>The session's <c>wait_timeout</c>, the idle time after which the server drops the connection.</summary>
    public virtual async ValueTask<TimeSpan?> ReadWaitTimeoutAsync(DbConnection connection, TimeSpan timeout, bool async, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();

        // CAST: an integer column, so that no driver has to decode the variable's character set
        // (MySql.Data 8.0 cannot read MariaDB 10.6+'s utf8mb3).
        command.CommandText = "SELECT CAST(@@SESSION.wait_timeout AS SIGNED)";
        command.CommandTimeout = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds));
        var value = async ? await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) : command.ExecuteScalar();
        return value is null or DBNull ? null : TimeSpan.FromSeconds(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The TCP socket under the driver's connection (under TLS too), found once when it opens (null for a
    /// unix socket or named pipe, or a driver version whose insides are unknown), and whether the protocol
    /// on it is plain, with no TLS and no compression, so that the pool may ping it on the wire itself
    /// (<see cref="WirePing"/>).
    /// </summary>
    public virtual (System.Net.Sockets.Socket? Socket, bool Plain) FindSocket(DbConnection connection) => SocketAborter.Inspect(connection);

    /// <summary>The driver's version, as its assembly says.</summary>
    public virtual string Version => "unknown";

    /// <summary>Whether the driver tells whether a transaction is open without a round trip (<see cref="IsInTransaction"/> can answer).</summary>
    public virtual bool KnowsTransactionState => false;

    /// <summary>Whether the driver keeps the server's status flags (autocommit, session state changed).</summary>
    public virtual bool KeepsStatusFlags => false;

    /// <summary>Whether <see cref="ResetSession"/> can reset a session.</summary>
    public virtual bool CanResetSession => false;

    /// <summary>
    /// Whether a system transaction is still fit for another connection after this driver's enlistment in it
    /// failed (the enlistment's <c>BEGIN</c> met a dead connection), so that a live connection may enlist instead.
    /// </summary>
    public virtual bool EnlistsAgainAfterFailure => true;

    /// <summary>Closes the connection's socket under the driver, so that a read blocked on it fails now.</summary>
    public virtual bool Abort(DbConnection connection) => SocketAborter.Abort(connection);

    private static KeepAliveConfigurationException NotReferenced(string wanted, string other) =>
        new($"NHKeepAlive was asked to use {wanted}, but the application does not reference it: add the {wanted} package, or set the driver to {other} (nhkeepalive.driver) if that is the one you use.");
}
