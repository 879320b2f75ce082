using System;
using System.Collections.Generic;
using System.Globalization;

namespace NHKeepAlive;

/// <summary>A <see cref="KeepAliveOption"/> whose value is a <typeparamref name="T"/>.</summary>
/// <typeparam name="T">The type of the <see cref="KeepAliveOptions"/> property.</typeparam>
internal sealed class KeepAliveOption<T> : KeepAliveOption
{
    private readonly Func<KeepAliveOptions, T> _get;
    private readonly Action<KeepAliveOptions, T> _set;
    private readonly Func<string, string, T> _parse;
    private readonly Func<T, string?>? _check;
    private readonly Func<T, string> _show;
    private readonly Func<string, string, T>? _parseConnectionString;
    private readonly string? _defaultText;

    /// <param name="name">The <c>nhkeepalive.*</c> property name.</param>
    /// <param name="member">The <see cref="KeepAliveOptions"/> property's name.</param>
    /// <param name="defaultValue">The default.</param>
    /// <param name="get">Reads the property.</param>
    /// <param name="set">Writes the property (through its public setter, which marks it explicitly set).</param>
    /// <param name="parse">Parses a property's text: (property name, text) to value; throws <see cref="KeepAliveConfigurationException"/>.</param>
    /// <param name="doc">One line: what it does, and why that default.</param>
    /// <param name="check">The range check: null for a good value, else what it must be ("it must be ...").</param>
    /// <param name="show">How a value reads in a message; default: invariant text, durations as <see cref="PoolSettings.Show"/>.</param>
    /// <param name="defaultText">How README shows the default when the value alone does not say it.</param>
    /// <param name="connectionStringKeywords">See <see cref="KeepAliveOption.ConnectionStringKeywords"/>.</param>
    /// <param name="parseConnectionString">Parses a connection string keyword's value: (keyword, text) to value.</param>
    public KeepAliveOption(
        string name,
        string member,
        T defaultValue,
        Func<KeepAliveOptions, T> get,
        Action<KeepAliveOptions, T> set,
        Func<string, string, T> parse,
        string doc,
        Func<T, string?>? check = null,
        Func<T, string>? show = null,
        string? defaultText = null,
        string[]? connectionStringKeywords = null,
        Func<string, string, T>? parseConnectionString = null)
        : base(name, member, doc, connectionStringKeywords)
    {
        if ((connectionStringKeywords is { Length: > 0 }) != (parseConnectionString is not null))
            throw new ArgumentException("Connection string keywords need a parser for their values, and only they do.", nameof(parseConnectionString));
        Default = defaultValue;
        _get = get;
        _set = set;
        _parse = parse;
        _check = check;
        _show = show ?? ShowValue;
        _defaultText = defaultText;
        _parseConnectionString = parseConnectionString;
    }

    /// <summary>The default value.</summary>
    public T Default { get; }

    /// <inheritdoc/>
    public override string DefaultText => _defaultText ?? DefaultOf(Default);

    /// <summary>The option's value in <paramref name="options"/>.</summary>
    public T Get(KeepAliveOptions options) => _get(options);

    /// <inheritdoc/>
    public override void Apply(KeepAliveOptions options, string key, string text) => _set(options, _parse(key, text));

    /// <inheritdoc/>
    public override string? Problem(KeepAliveOptions options, string source)
    {
        var value = _get(options);
        return _check?.Invoke(value) is { } problem ? $"{Member} ({source}) is {_show(value)}; {problem}" : null;
    }

    /// <inheritdoc/>
    public override (string Explicit, string ConnectionString)? TakeFromConnectionString(KeepAliveOptions options, string keyword, string text)
    {
        if (_parseConnectionString is null)
            throw new InvalidOperationException($"{Name} takes no connection string keyword.");
        var value = _parseConnectionString(keyword, text);
        if (!options.IsExplicit(this))
        {
            _set(options, value);
            return null;
        }

        var mine = _get(options);
        return EqualityComparer<T>.Default.Equals(mine, value) ? null : (_show(mine), _show(value));
    }

    private static string ShowValue(T value) => value switch
    {
        null => "null",
        TimeSpan span => PoolSettings.Show(span),
        Enum e => Convert.ToInt64(e, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };

    private static string DefaultOf(T value) => value switch
    {
        TimeSpan span => OptionText.ShowDefault(span),
        bool flag => flag ? "true" : "false",
        Enum e => $"`{e.ToString().ToLowerInvariant()}`",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => throw new InvalidOperationException("This option's default needs a defaultText."),
    };
}
