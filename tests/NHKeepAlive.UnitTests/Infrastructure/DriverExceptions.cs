using System;
using System.Reflection;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>Real MySql.Data and MySqlConnector exception objects (their constructors are internal).</summary>
internal static class DriverExceptions
{
    private const BindingFlags Internal = BindingFlags.Instance | BindingFlags.NonPublic;

    public static Exception MySqlData(string message, int number, Exception? inner = null) =>
        (Exception)typeof(MySql.Data.MySqlClient.MySqlException)
            .GetConstructor(Internal, null, [typeof(string), typeof(int), typeof(Exception)], null)!
            .Invoke([message, number, inner]);

    public static Exception MySqlConnector(int code, string message, Exception? inner = null) =>
        (Exception)typeof(MySqlConnector.MySqlException)
            .GetConstructor(Internal, null, [typeof(MySqlConnector.MySqlErrorCode), typeof(string), typeof(Exception)], null)!
            .Invoke([(MySqlConnector.MySqlErrorCode)code, message, inner]);

    public static Exception MySqlConnectorEndOfStream() =>
        (Exception)typeof(MySqlConnector.MySqlEndOfStreamException)
            .GetConstructor(Internal, null, [typeof(int), typeof(int)], null)!
            .Invoke([4, 0]);
}
