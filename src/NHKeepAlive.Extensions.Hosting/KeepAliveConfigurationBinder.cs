using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Extensions.Configuration;

namespace NHKeepAlive.Extensions.Hosting;

/// <summary>
/// Reads <see cref="KeepAliveOptions"/> from an <see cref="IConfiguration"/> section (appsettings.json,
/// environment variables, any provider) with the same names and parse rules as the <c>nhkeepalive.*</c>
/// properties: each key is either the option's property name (<c>MaxPoolSize</c>, <c>KeepAliveInterval</c>)
/// or its <c>nhkeepalive.*</c> name with or without the prefix (<c>nhkeepalive.max_pool_size</c>,
/// <c>max_pool_size</c>); case, underscores, dashes and dots are ignored. Values are parsed by the core
/// (<see cref="KeepAliveOptions.ApplyProperties"/>): durations take <c>500ms</c>, <c>3s</c>, <c>2m</c>,
/// <c>1h</c>, a bare number of seconds or <c>hh:mm:ss</c>. An unknown key or a value that does not parse
/// is a <see cref="KeepAliveConfigurationException"/> naming the key's configuration path; no value is
/// echoed for the connection string.
/// </summary>
public static class KeepAliveConfigurationBinder
{
    // "maxpoolsize" -> "nhkeepalive.max_pool_size": every option's property name is its nhkeepalive.* name without separators.
    private static readonly Dictionary<string, string> s_names = KeepAliveProperties.All
        .ToDictionary(name => Normalize(name), name => name, StringComparer.Ordinal);

    /// <summary>Applies every key of <paramref name="section"/> to <paramref name="options"/> (which marks each as set explicitly).</summary>
    /// <param name="options">The options to change.</param>
    /// <param name="section">The configuration section, e.g. <c>builder.Configuration.GetSection("NHKeepAlive")</c>.</param>
    /// <returns><paramref name="options"/>.</returns>
    /// <exception cref="KeepAliveConfigurationException">A key is unknown, is a section rather than a value, or its value does not parse.</exception>
    public static KeepAliveOptions Bind(KeepAliveOptions options, IConfiguration section)
    {
        if (options is null)
            throw new ArgumentNullException(nameof(options));
        if (section is null)
            throw new ArgumentNullException(nameof(section));
        foreach (var child in section.GetChildren())
        {
            var path = child.Path;
            if (!s_names.TryGetValue(Normalize(child.Key), out var property))
            {
                throw new KeepAliveConfigurationException(
                    $"Unknown NHKeepAlive option '{path}' in the configuration. Use an option's property name (MaxPoolSize, KeepAliveInterval, ...) or its nhkeepalive.* name: {string.Join(", ", KeepAliveProperties.All)}.");
            }

            if (child.Value is null)
            {
                // A section (an object or an array in JSON) where a value was expected; an empty JSON object is a section with no children.
                if (child.GetChildren().Any())
                    throw new KeepAliveConfigurationException($"NHKeepAlive option '{path}' ({property}) must be a value, not a section.");
                continue;
            }

            try
            {
                options.ApplyProperties([new KeyValuePair<string, string>(property, child.Value)]);
            }
            catch (KeepAliveConfigurationException e)
            {
                throw new KeepAliveConfigurationException($"Configuration '{path}': {e.Message}", e);
            }
        }

        return options;
    }

    private static string Normalize(string key)
    {
        var text = key.StartsWith(KeepAliveProperties.Prefix, StringComparison.OrdinalIgnoreCase) ? key.Substring(KeepAliveProperties.Prefix.Length) : key;
        var chars = text.Where(c => c is not ('_' or '-' or '.' or ' ')).Select(char.ToUpperInvariant).ToArray();
        return new string(chars);
    }
}
