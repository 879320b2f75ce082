using System;
using System.Collections.Generic;

namespace NHKeepAlive.NHibernate.Tests.Infrastructure;

/// <summary>The server's error number behind an exception NHibernate threw, whichever driver raised it.</summary>
internal static class ServerErrors
{
    /// <summary>The MySQL error number of the first driver exception in <paramref name="error"/>'s chain, or null.</summary>
    public static int? Number(Exception? error)
    {
        foreach (var e in Chain(error))
        {
            switch (e)
            {
                case MySql.Data.MySqlClient.MySqlException data:
                    return data.Number;
                case MySqlConnector.MySqlException connector:
                    return connector.Number;
            }
        }

        return null;
    }

    /// <summary>The exception chain's types and the first line of the innermost message, for a test's output.</summary>
    public static string Describe(Exception? error)
    {
        if (error is null)
            return "none";
        var chain = new List<Exception>(Chain(error));
        var names = string.Join(" > ", chain.ConvertAll(e => e.GetType().Name));
        return $"{names}: {chain[chain.Count - 1].Message.Split('\n')[0]}";
    }

    public static IEnumerable<Exception> Chain(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
            yield return e;
    }
}
