using System;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.Configuration;

namespace NHKeepAlive;

/// <summary>
/// Options from the application's configuration file (web.config / app.config) through
/// <see cref="ConfigurationManager"/>: a connection string from <c>&lt;connectionStrings&gt;</c> and
/// <c>nhkeepalive.*</c> keys from <c>&lt;appSettings&gt;</c>, with the same names and errors as everywhere.
/// </summary>
public static class KeepAliveAppConfig
{
    /// <summary>Options from the configuration file.</summary>
    /// <param name="connectionStringName">The name of a <c>&lt;connectionStrings&gt;</c> entry, or null to take the connection string from <c>nhkeepalive.connection_string</c>.</param>
    /// <returns>The options, not yet checked (building a pool checks them).</returns>
    /// <exception cref="KeepAliveConfigurationException">The file cannot be read, the connection string is not there, or a setting is wrong.</exception>
    public static KeepAliveOptions Load(string? connectionStringName = null)
    {
        var options = new KeepAliveOptions();
        ApplyAppSettings(options, AppSettings());
        if (connectionStringName is not null)
            options.ConnectionString = ConnectionString(connectionStringName);
        return options;
    }

    /// <summary>The connection string named <paramref name="name"/> in <c>&lt;connectionStrings&gt;</c>.</summary>
    /// <param name="name">The entry's name.</param>
    /// <returns>The connection string.</returns>
    /// <exception cref="KeepAliveConfigurationException">No such entry, or the file cannot be read.</exception>
    public static string ConnectionString(string name)
    {
        ConnectionStringSettings? entry;
        try
        {
            entry = ConfigurationManager.ConnectionStrings[name];
        }
        catch (ConfigurationErrorsException e)
        {
            throw new KeepAliveConfigurationException($"The application's configuration file could not be read: {e.Message}", e);
        }

        if (entry is null || string.IsNullOrWhiteSpace(entry.ConnectionString))
            throw new KeepAliveConfigurationException($"There is no connection string named '{name}' in the <connectionStrings> of the application's configuration file (web.config or app.config).");
        return entry.ConnectionString;
    }

    /// <summary>The application's <c>&lt;appSettings&gt;</c>.</summary>
    /// <returns>The settings.</returns>
    /// <exception cref="KeepAliveConfigurationException">The file cannot be read.</exception>
    public static NameValueCollection AppSettings()
    {
        try
        {
            return ConfigurationManager.AppSettings;
        }
        catch (ConfigurationErrorsException e)
        {
            throw new KeepAliveConfigurationException($"The application's configuration file could not be read for nhkeepalive.* appSettings: {e.Message}", e);
        }
    }

    /// <summary>Applies the <c>nhkeepalive.*</c> keys of <paramref name="settings"/> to <paramref name="options"/>; other keys are ignored.</summary>
    /// <param name="options">The options to change.</param>
    /// <param name="settings">appSettings, or any name/value collection.</param>
    /// <returns>The options.</returns>
    public static KeepAliveOptions ApplyAppSettings(KeepAliveOptions options, NameValueCollection settings)
    {
        if (options is null)
            throw new ArgumentNullException(nameof(options));
        if (settings is null)
            throw new ArgumentNullException(nameof(settings));
        foreach (var name in settings.AllKeys)
        {
            if (name is not null && name.StartsWith(KeepAliveProperties.Prefix, StringComparison.OrdinalIgnoreCase))
                options.ApplyProperties([new KeyValuePair<string, string>(name, settings[name] ?? string.Empty)]);
        }

        return options;
    }
}
