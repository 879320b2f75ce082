namespace NHKeepAlive;

/// <summary>How the pool keeps one caller's session state from the next (<see cref="KeepAliveOptions.SessionReset"/>).</summary>
public enum SessionResetPolicy
{
    /// <summary>
    /// Reset a returned connection only when its session may have changed: the pool watches each statement
    /// (MySqlConnector's tracing; on MySql.Data, a command interceptor, with the server's status flags for
    /// transactions). A clean return costs no round trip.
    /// </summary>
    Auto = 0,

    /// <summary>Reset every returned connection (one round trip per return), as MySqlConnector's own pool does.</summary>
    Always = 1,

    /// <summary>
    /// Never reset: only an open transaction is rolled back and the database restored. Whatever else
    /// a caller changes (autocommit, variables, locks, temporary tables) reaches the next caller.
    /// </summary>
    Never = 2,
}
