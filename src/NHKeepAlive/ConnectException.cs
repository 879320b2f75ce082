using System;
using System.Data.Common;

namespace NHKeepAlive;

/// <summary>
/// The pool could not open a physical connection. The driver's own exception is the
/// <see cref="Exception.InnerException"/>; the message adds where the pool tried to connect and
/// what usually fixes it. Derives from <see cref="DbException"/>, as the driver's exception does.
/// </summary>
public sealed class ConnectException : DbException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The driver's exception.</param>
    public ConnectException(string message, Exception innerException)
        : base(message, innerException)
    {
        ErrorNumber = innerException is null ? null : DisconnectClassifier.ErrorNumber(innerException);
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public ConnectException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a default message.</summary>
    public ConnectException()
        : base("Could not open a connection to the MySQL server.")
    {
    }

    /// <summary>The driver's MySQL error number (1045 access denied, 1049 unknown database, 1042 host unreachable…), if it gave one.</summary>
    public int? ErrorNumber { get; }

    internal static ConnectException From(Exception driverError, string poolName, Func<string, string> redact)
    {
        var number = DisconnectClassifier.ErrorNumber(driverError);
        var hint = number switch
        {
            1045 => "Check the user name and password in the connection string.",
            1044 => "The user may not use this database: grant it access or connect to another database.",
            1049 => "The database in the connection string does not exist: create it or fix its name.",
            1040 => "The server has reached max_connections: lower the pool's max size (nhkeepalive.max_pool_size) or raise the server's max_connections.",
            1042 => "Check that the server is running and that host and port in the connection string are right and reachable from here.",
            _ => "Check that the server is running and that the connection string's host, port, user and password are right.",
        };
        return new ConnectException(redact($"Could not open a connection for pool '{poolName}': {driverError.Message} {hint}"), driverError);
    }
}
