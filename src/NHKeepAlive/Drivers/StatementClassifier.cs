using System;
using System.Collections.Generic;

namespace NHKeepAlive.Drivers;

/// <summary>
/// Tells, from a command's text alone, whether it certainly leaves the session as it found it: a
/// whitelist, so that anything it does not know is a change. Clean: SELECT, INSERT, UPDATE, DELETE,
/// REPLACE, WITH, VALUES, TABLE, SHOW, DESCRIBE or EXPLAIN statements (one or several, each judged) that assign no user variable
/// (<c>:=</c>, <c>INTO @v</c>), takes or releases no named lock, sets no LAST_INSERT_ID(x) (an auto-increment INSERT sets it, as on any connection), and has no
/// executable comment (<c>/*! … */</c>). Everything else (SET, USE, START TRANSACTION, CREATE TEMPORARY
/// TABLE, LOCK TABLES, CALL, DO, PREPARE, …) is a change.
/// <para>
/// What text cannot show: a stored function or a trigger that assigns user variables or takes a named
/// lock inside a clean-looking statement. Applications that do that set
/// <see cref="SessionResetPolicy.Always"/>.
/// </para>
/// </summary>
internal static class StatementClassifier
{
    private static readonly HashSet<string> s_cleanVerbs = new(StringComparer.OrdinalIgnoreCase)
    {
        "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC", "EXPLAIN",
    };

    /// <summary>Functions that change the session when called with arguments (LAST_INSERT_ID() without one only reads).</summary>
    private static readonly HashSet<string> s_sessionFunctions = new(StringComparer.OrdinalIgnoreCase)
    {
        "GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS", "LAST_INSERT_ID",
    };

    /// <summary>Whether <paramref name="sql"/> certainly leaves the session unchanged (a transaction statement counts as a change).</summary>
    public static bool LeavesSessionClean(string? sql) => Classify(sql) == StatementEffects.None;

    /// <summary>
    /// What <paramref name="sql"/> may leave behind: nothing, a transaction (BEGIN, START TRANSACTION,
    /// COMMIT, ROLLBACK, SAVEPOINT, RELEASE SAVEPOINT: what a driver that reads the server's status
    /// flags sees at the return), a characteristic for the next transaction (<c>SET TRANSACTION</c>
    /// not followed by the transaction it is for), or a session change (everything not known clean).
    /// </summary>
    public static StatementEffects Classify(string? sql)
    {
        // Called inside the application's commands: nothing may escape, and a statement it failed to judge is a change.
        try
        {
            return Scan(sql);
        }
#pragma warning disable CA1031 // See above.
        catch (Exception)
#pragma warning restore CA1031
        {
            return StatementEffects.Session;
        }
    }

    private static StatementEffects Scan(string? sql)
    {
        if (sql is null)
            return StatementEffects.Session;
        var effects = StatementEffects.None;
        var first = true;
        var statements = 0;
        string? previousWord = null;
        for (var i = 0; i < sql.Length;)
        {
            var c = sql[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }

            // Comments: skipped, except the executable ones the server runs (/*! … */, /*M! … */).
            if (c == '#' || (c == '-' && At(sql, i, "-- ")) || (c == '-' && At(sql, i, "--") && i + 2 == sql.Length))
            {
                i = SkipPast(sql, i, '\n');
                continue;
            }

            if (c == '/' && At(sql, i, "/*"))
            {
                if (At(sql, i, "/*!") || At(sql, i, "/*M!"))
                    return StatementEffects.Session;
                var end = sql.IndexOf("*/", i + 2, StringComparison.Ordinal);
                if (end < 0)
                    return StatementEffects.Session;
                i = end + 2;
                continue;
            }

            if (first && !char.IsLetter(c) && c is not ('_' or '('))
                return StatementEffects.Session; // a statement starts with its verb

            if (c is '\'' or '"' or '`')
            {
                i = SkipQuoted(sql, i);
                if (i < 0)
                    return StatementEffects.Session;
                previousWord = null;
                first = false;
                continue;
            }

            if (c == ';')
            {
                // Another statement may follow (NHibernate appends SELECT LAST_INSERT_ID() to an INSERT): it is judged on its own.
                first = true;
                statements++;
                previousWord = null;
                i++;
                continue;
            }

            if (c == ':' && At(sql, i, ":="))
                return StatementEffects.Session; // assigns a user variable
            if (c == '@')
            {
                if (string.Equals(previousWord, "INTO", StringComparison.OrdinalIgnoreCase))
                    return StatementEffects.Session; // SELECT … INTO @v
                i++;
                while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] is '_' or '@' or '.' or '$'))
                    i++;
                previousWord = null;
                first = false;
                continue;
            }

            if (char.IsLetter(c) || c == '_')
            {
                var start = i;
                while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] is '_' or '$'))
                    i++;
                var word = sql.Substring(start, i - start);
                if (first && !s_cleanVerbs.Contains(word))
                {
                    switch (TransactionStatement(word, NextWord(sql, i), EndsSession(sql, i)))
                    {
                        case StatementEffects.Session:
                            return StatementEffects.Session;
                        case StatementEffects.NextTransaction:
                            effects |= StatementEffects.NextTransaction;
                            break;
                        case StatementEffects.BeginsTransaction:
                            effects = (effects & ~StatementEffects.NextTransaction) | StatementEffects.BeginsTransaction | StatementEffects.Transaction;
                            break;
                        case var other:
                            effects |= other;
                            break;
                    }
                }

                first = false;
                if (s_sessionFunctions.Contains(word) && CallsWithArguments(sql, i))
                    return StatementEffects.Session;
                previousWord = word;
                continue;
            }

            if (c == '(' && first)
            {
                i++; // (SELECT …) UNION …: the verb follows
                continue;
            }

            first = false;
            previousWord = null;
            i++;
        }

        return !first || statements > 0 ? effects : StatementEffects.Session; // an empty text is no statement; a trailing ';' ends one
    }

    /// <summary>The effect of a statement whose verb is <paramref name="verb"/> and next word <paramref name="next"/>, when the verb is not a clean one.</summary>
    private static StatementEffects TransactionStatement(string verb, string? next, bool release)
    {
        static bool Is(string? word, string expected) => string.Equals(word, expected, StringComparison.OrdinalIgnoreCase);
        if (Is(verb, "SET"))
            return Is(next, "TRANSACTION") ? StatementEffects.NextTransaction : StatementEffects.Session; // not SET SESSION TRANSACTION
        if (Is(verb, "BEGIN"))
            return next is null || Is(next, "WORK") ? StatementEffects.BeginsTransaction : StatementEffects.Session; // not BEGIN NOT ATOMIC
        if (Is(verb, "START"))
            return Is(next, "TRANSACTION") ? StatementEffects.BeginsTransaction : StatementEffects.Session;
        if (Is(verb, "COMMIT") || Is(verb, "ROLLBACK"))
            return release ? StatementEffects.Session : StatementEffects.Transaction; // COMMIT RELEASE ends the session
        if (Is(verb, "SAVEPOINT"))
            return StatementEffects.Transaction;
        if (Is(verb, "RELEASE"))
            return Is(next, "SAVEPOINT") ? StatementEffects.Transaction : StatementEffects.Session;
        return StatementEffects.Session;
    }

    /// <summary>Whether the statement from index <paramref name="i"/> to its end has the word RELEASE (COMMIT … RELEASE; NO RELEASE counts too, which costs a reset at worst).</summary>
    private static bool EndsSession(string sql, int i)
    {
        var end = sql.IndexOf(';', i);
        var rest = end < 0 ? sql.Substring(i) : sql.Substring(i, end - i);
#if NETSTANDARD2_0 || NETFRAMEWORK
        return rest.IndexOf("RELEASE", StringComparison.OrdinalIgnoreCase) >= 0;
#else
        return rest.Contains("RELEASE", StringComparison.OrdinalIgnoreCase);
#endif
    }

    /// <summary>The word after index <paramref name="i"/> past white space, or null at the end of the statement (anything else but a word is returned as itself, which matches no keyword).</summary>
    private static string? NextWord(string sql, int i)
    {
        while (i < sql.Length && char.IsWhiteSpace(sql[i]))
            i++;
        if (i >= sql.Length || sql[i] == ';')
            return null;
        var start = i;
        while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] == '_'))
            i++;
        return i == start ? sql.Substring(start, 1) : sql.Substring(start, i - start);
    }

    private static bool At(string sql, int i, string token) => string.CompareOrdinal(sql, i, token, 0, token.Length) == 0;

    private static int SkipPast(string sql, int i, char end)
    {
        var at = sql.IndexOf(end, i);
        return at < 0 ? sql.Length : at + 1;
    }

    /// <summary>The index after a quoted literal or identifier starting at <paramref name="i"/>; -1 when it never ends or holds a backslash.</summary>
    private static int SkipQuoted(string sql, int i)
    {
        var quote = sql[i];
        for (i++; i < sql.Length; i++)
        {
            // A backslash escapes the next character, or not (NO_BACKSLASH_ESCAPES): where the literal ends
            // is then unknown, and so is what follows it.
            if (sql[i] == '\\' && quote != '`')
                return -1;

            if (sql[i] == quote)
            {
                if (i + 1 < sql.Length && sql[i + 1] == quote)
                {
                    i++; // a doubled quote stands for itself
                    continue;
                }

                return i + 1;
            }
        }

        return -1;
    }

    /// <summary>Whether the word ending at <paramref name="i"/> is called with at least one argument.</summary>
    private static bool CallsWithArguments(string sql, int i)
    {
        while (i < sql.Length && char.IsWhiteSpace(sql[i]))
            i++;
        if (i >= sql.Length || sql[i] != '(')
            return false;
        for (i++; i < sql.Length && char.IsWhiteSpace(sql[i]); i++)
        {
        }

        return i < sql.Length && sql[i] != ')';
    }
}

/// <summary>What a statement may leave on its session (<see cref="StatementClassifier.Classify"/>).</summary>
[Flags]
internal enum StatementEffects
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>A transaction begun, ended or marked (seen at the return in the server's status flags, where the driver keeps them).</summary>
    Transaction = 1,

    /// <summary>A <c>SET TRANSACTION</c> characteristic for a next transaction that the text does not begin.</summary>
    NextTransaction = 2,

    /// <summary>A transaction begun (it takes any pending <see cref="NextTransaction"/> characteristic).</summary>
    BeginsTransaction = 4,

    /// <summary>Anything else, or unknown.</summary>
    Session = 8,
}
