using System;
using System.Collections.Generic;
using System.Threading;

namespace NHKeepAlive;

/// <summary>
/// One option of <see cref="KeepAliveOptions"/>, declared once (as MySqlConnector's
/// <c>MySqlConnectionStringOption</c>): its property name, default, parser, range check, one-line doc
/// and the connection string keywords it also takes. <see cref="KeepAliveOptionTable"/> lists them all;
/// property lookup, parsing, per-value validation, README's table and the "unknown property" error
/// all come from there.
/// </summary>
internal abstract class KeepAliveOption
{
    private static int s_count;

    private protected KeepAliveOption(string name, string member, string doc, string[]? connectionStringKeywords)
    {
        Name = name;
        Member = member;
        Doc = doc;
        ConnectionStringKeywords = connectionStringKeywords ?? [];
        Index = Interlocked.Increment(ref s_count) - 1;
        if (Index >= 64)
            throw new InvalidOperationException("KeepAliveOptions tracks at most 64 options as explicitly set.");
    }

    /// <summary>The <c>nhkeepalive.*</c> property name (a <see cref="KeepAliveProperties"/> constant).</summary>
    public string Name { get; }

    /// <summary>The <see cref="KeepAliveOptions"/> property that holds the value.</summary>
    public string Member { get; }

    /// <summary>What the option does, and why that default: one line, as README's options table says it.</summary>
    public string Doc { get; }

    /// <summary>
    /// Connection string keywords this option takes its value from when it is not set explicitly, one
    /// spelling per meaning; the driver's own connection string builder maps every alias it knows onto
    /// them (a keyword the driver does not know is skipped for that driver). Empty for most options.
    /// </summary>
    public IReadOnlyList<string> ConnectionStringKeywords { get; }

    /// <summary>The option's bit in <see cref="KeepAliveOptions"/>' set of explicitly assigned options.</summary>
    public int Index { get; }

    /// <summary>The default as README's options table shows it.</summary>
    public abstract string DefaultText { get; }

    /// <summary>Parses <paramref name="text"/> and sets the option (which marks it explicitly set).</summary>
    /// <exception cref="KeepAliveConfigurationException">The text does not parse; the message names <paramref name="key"/>.</exception>
    public abstract void Apply(KeepAliveOptions options, string key, string text);

    /// <summary>The range check of the option's current value: null when it is fine, else a message that names <paramref name="source"/>.</summary>
    public abstract string? Problem(KeepAliveOptions options, string source);

    /// <summary>
    /// Takes the value of a connection string keyword unless the option was set explicitly. Returns
    /// null, or, when the explicit value differs from the connection string's, the two values as
    /// they read (for one warning).
    /// </summary>
    /// <exception cref="KeepAliveConfigurationException">The value does not parse; the message names <paramref name="keyword"/>.</exception>
    public abstract (string Explicit, string ConnectionString)? TakeFromConnectionString(KeepAliveOptions options, string keyword, string text);

    /// <inheritdoc/>
    public override string ToString() => Name;
}
