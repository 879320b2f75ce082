using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Reflection;

namespace NHKeepAlive;

/// <summary>
/// Tells an error that means "this connection is gone" (the server closed it, killed it, restarted,
/// or the network dropped it) from an error of the statement itself (syntax, constraint, lock wait),
/// for MySql.Data and MySqlConnector alike. Most disconnects carry error number 0, so the
/// classification reads the exception's type and its inner exceptions as well as the number.
/// </summary>
public static class DisconnectClassifier
{
    /// <summary>
    /// MySQL/MariaDB error numbers that mean the connection is unusable: 2006 server gone away, 2013
    /// lost connection during query, 2014 commands out of sync, 2055 lost connection (extended), 4031
    /// disconnected by the server for inactivity (MySQL 8.0.24+), 1927 connection killed (MariaDB),
    /// 1053 server shutdown in progress, 1152 aborted connection, 1159/1161 network read/write
    /// timeout, 1158/1160 network read/write error.
    /// </summary>
    public static IReadOnlyCollection<int> DisconnectErrorNumbers { get; } =
        new HashSet<int> { 2006, 2013, 2014, 2055, 4031, 1927, 1053, 1152, 1158, 1159, 1160, 1161 };

    private static readonly ConcurrentDictionary<Type, PropertyInfo?> s_numberProperties = new();

    /// <summary>Whether <paramref name="exception"/> (or one inside it) means the connection it came from is gone.</summary>
    /// <param name="exception">An exception a command or connection threw.</param>
    /// <returns>True for a disconnect, false for an error of the statement or of the caller.</returns>
    public static bool IsDisconnect(Exception? exception) => Classify(exception) is not null;

    /// <summary>
    /// Classifies <paramref name="exception"/>: a readable reason when it means the connection is
    /// gone (used as the eviction reason), or null when it does not.
    /// </summary>
    /// <param name="exception">An exception a command or connection threw.</param>
    /// <returns>The reason, or null.</returns>
    public static string? Classify(Exception? exception)
    {
        for (var depth = 0; exception is not null && depth < 8; depth++)
        {
            var number = ErrorNumber(exception);
            if (number is int n && n != 0)
            {
                if (((HashSet<int>)DisconnectErrorNumbers).Contains(n))
                    return $"MySQL error {n}: {exception.Message}";

                // A server error with a number of its own (syntax, duplicate key, lock wait…) is the
                // statement's, whatever it wraps.
                return null;
            }

            switch (exception)
            {
                case SocketException socket:
                    return $"socket error {socket.SocketErrorCode}: {socket.Message}";
                case EndOfStreamException:
                    return $"the server closed the connection: {exception.Message}";
                case IOException:
                    return $"I/O error on the connection: {exception.Message}";
                case ObjectDisposedException disposed when disposed.ObjectName is { } name && (name.Contains("Socket") || name.Contains("Stream")):
                    return $"the connection's socket was closed: {exception.Message}";
                case AggregateException { InnerExceptions.Count: 1 } aggregate:
                    exception = aggregate.InnerExceptions[0];
                    continue;
            }

            // MySqlConnector's MySqlEndOfStreamException derives from EndOfStreamException already;
            // older builds named it MySqlProtocolException.
            if (exception.GetType().Name is "MySqlEndOfStreamException" or "MySqlProtocolException")
                return $"the server closed the connection: {exception.Message}";
            exception = exception.InnerException;
        }

        return null;
    }

    /// <summary>The MySQL error number of a MySql.Data or MySqlConnector exception, or null for any other exception.</summary>
    /// <param name="exception">The exception.</param>
    /// <returns>The number (0 where the driver gave none), or null.</returns>
    public static int? ErrorNumber(Exception exception)
    {
        if (exception is null)
            throw new ArgumentNullException(nameof(exception));
        var type = exception.GetType();
        if (type.Name != "MySqlException")
            return null;
        var property = s_numberProperties.GetOrAdd(type, t => t.GetProperty("Number", BindingFlags.Public | BindingFlags.Instance));
        return property?.GetValue(exception) is int number ? number : null;
    }
}
