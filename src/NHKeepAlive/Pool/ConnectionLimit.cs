using System;

namespace NHKeepAlive;

/// <summary>
/// Tells a connect the server refused because it is full from any other connect error: 1040 (too many
/// connections: <c>max_connections</c>), 1203 (the user's <c>max_user_connections</c>) and 1226 (an account's
/// <c>MAX_USER_CONNECTIONS</c> resource), in both drivers' wordings, also where MySql.Data wraps the refusal
/// as an authentication failure.
/// </summary>
internal static class ConnectionLimit
{
    private static readonly string[] s_words = ["Too many connections", "max_user_connections"];

    /// <summary>The server's words when <paramref name="error"/> (or one inside it) is a connection-limit refusal; null otherwise.</summary>
    public static string? Classify(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (DisconnectClassifier.ErrorNumber(e) is 1040 or 1203 or 1226)
                return e.Message;
            foreach (var words in s_words)
            {
#pragma warning disable CA2249 // netstandard2.0 has no string.Contains(string, StringComparison).
                if (e.Message.IndexOf(words, StringComparison.OrdinalIgnoreCase) >= 0)
#pragma warning restore CA2249
                    return e.Message;
            }
        }

        return null;
    }
}
