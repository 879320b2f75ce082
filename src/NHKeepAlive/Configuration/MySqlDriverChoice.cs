using System;

namespace NHKeepAlive;

/// <summary>
/// The one place that decides which driver NHKeepAlive uses: how a setting is spelled, and what
/// <see cref="MySqlDriver.Auto"/> becomes. The pool and the NHibernate adapters both ask it, so they
/// never disagree.
/// </summary>
public static class MySqlDriverChoice
{
    /// <summary>
    /// Reads a driver setting. Case, dots, dashes, underscores and spaces are ignored, so
    /// <c>MySql.Data</c>, <c>mysqldata</c>, <c>mysql-data</c>, <c>MySqlConnector</c>, <c>mysql-connector</c>
    /// and <c>mysql_connector</c> are all understood; blank means <see cref="MySqlDriver.Auto"/>.
    /// </summary>
    /// <param name="value">The text.</param>
    /// <param name="settingName">The setting's name, for the error message.</param>
    /// <returns>The driver.</returns>
    /// <exception cref="KeepAliveConfigurationException">The text names no driver.</exception>
    public static MySqlDriver Parse(string? value, string settingName = KeepAliveProperties.Driver)
    {
        var text = value ?? string.Empty;
        var squeezed = new System.Text.StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is not ('.' or '-' or '_' or ' '))
                squeezed.Append(char.ToUpperInvariant(c));
        }

        switch (squeezed.ToString())
        {
            case "" or "AUTO":
                return MySqlDriver.Auto;
            case "MYSQLDATA":
                return MySqlDriver.MySqlData;
            case "MYSQLCONNECTOR":
                return MySqlDriver.MySqlConnector;
            default:
                throw new KeepAliveConfigurationException(
                    $"NHKeepAlive setting '{settingName}' has the value '{value}'. Use auto, mysql.data or mysqlconnector.");
        }
    }

    /// <summary>
    /// What <paramref name="requested"/> means in this application: itself, or for
    /// <see cref="MySqlDriver.Auto"/> MySql.Data if the application references it, else MySqlConnector.
    /// </summary>
    /// <param name="requested">The setting.</param>
    /// <returns>MySqlData or MySqlConnector.</returns>
    /// <exception cref="KeepAliveConfigurationException">The driver asked for (or, for Auto, any driver) is not referenced.</exception>
    public static MySqlDriver Resolve(MySqlDriver requested) =>
        Drivers.DriverAdapter.Resolve(requested).Kind;
}
