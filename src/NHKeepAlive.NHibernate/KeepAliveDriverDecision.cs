using System;
using System.Collections.Generic;
using NHibernate.Driver;
using NHibernate.Util;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate;

/// <summary>
/// Which MySQL driver a session factory on NHKeepAlive uses, and so which NHibernate driver class is
/// installed and which driver the pool opens connections with. Made in one place,
/// <see cref="Decide(MySqlDriver, IDictionary{string, string})"/>, which the connection provider asks
/// both for its NHibernate driver and for its pool.
/// </summary>
internal sealed class KeepAliveDriverDecision
{
    /// <summary>The type name NHibernate's MySQL dialects (and FluentNHibernate's <c>MySQLConfiguration</c>) set by themselves.</summary>
    private static readonly string s_stockMySqlDataDriver = typeof(MySqlDataDriver).FullName!;

    private KeepAliveDriverDecision(MySqlDriver driver, string driverClass, bool protectsHeldConnections)
    {
        Driver = driver;
        DriverClass = driverClass;
        ProtectsHeldConnections = protectsHeldConnections;
    }

    /// <summary>The driver the pool uses: <see cref="MySqlDriver.MySqlData"/> or <see cref="MySqlDriver.MySqlConnector"/>, never Auto.</summary>
    public MySqlDriver Driver { get; }

    /// <summary>The <c>connection.driver_class</c> NHibernate is given.</summary>
    public string DriverClass { get; }

    /// <summary>Whether <see cref="DriverClass"/> is one of NHKeepAlive's drivers (or derives from one), which guard held connections.</summary>
    public bool ProtectsHeldConnections { get; }

    /// <summary>
    /// Decides. In order:
    /// <list type="number">
    /// <item>an explicit <c>nhkeepalive.driver</c> (<paramref name="requested"/> other than Auto, from code,
    /// appSettings or an NHibernate property) wins;</item>
    /// <item>else a <c>connection.driver_class</c> that names MySqlConnector or MySql.Data: an NHKeepAlive driver,
    /// a class deriving from NHibernate's <see cref="MySqlDataDriver"/>, or a type name containing "MySqlConnector";</item>
    /// <item>else <see cref="MySqlDriverChoice.Resolve"/> of Auto: MySql.Data if the application references it, else MySqlConnector.</item>
    /// </list>
    /// NHibernate's own <c>NHibernate.Driver.MySqlDataDriver</c>, and whatever driver the configured dialect
    /// supplies by default, count as naming no driver: NHibernate's MySQL dialects supply the former as their default and FluentNHibernate's <c>MySQLConfiguration</c> sets it without being
    /// asked, so it cannot tell a choice. A <c>connection.driver_class</c> that names the other driver than an
    /// explicit <c>nhkeepalive.driver</c> is a <see cref="KeepAliveConfigurationException"/>.
    /// The stock driver and MySqlConnector drivers named only by type name are replaced with
    /// <see cref="KeepAliveMySqlDataDriver"/> or <see cref="KeepAliveMySqlConnectorDriver"/>; a class of the
    /// application's own (one deriving from an NHKeepAlive driver or from <see cref="MySqlDataDriver"/>, or any
    /// other driver) is kept.
    /// </summary>
    /// <param name="requested">The resolved <see cref="KeepAliveOptions.Driver"/> (code, then appSettings, then NHibernate properties).</param>
    /// <param name="settings">NHibernate's settings: <c>connection.driver_class</c> and <c>dialect</c> are read.</param>
    /// <returns>The decision.</returns>
    /// <exception cref="KeepAliveConfigurationException">The two settings contradict each other, or the driver chosen is not referenced.</exception>
    public static KeepAliveDriverDecision Decide(MySqlDriver requested, IDictionary<string, string> settings)
    {
        if (settings is null)
            throw new ArgumentNullException(nameof(settings));
        settings.TryGetValue(Environment.ConnectionDriver, out var configured);
        var (named, keep) = configured is not null && configured == DialectDefault(settings) ? (null, false) : Classify(configured);

        MySqlDriver driver;
        if (requested != MySqlDriver.Auto)
        {
            if (named is { } other && other != requested)
            {
                throw new KeepAliveConfigurationException(
                    $"'{Environment.ConnectionDriver}' is {configured}, a {Show(other)} driver, but '{KeepAliveProperties.Driver}' asks for {Show(requested)}. " +
                    $"Remove one of the two settings or make them agree (for {Show(requested)}, '{Environment.ConnectionDriver}' can be left out).");
            }

            driver = MySqlDriverChoice.Resolve(requested);
        }
        else
        {
            driver = MySqlDriverChoice.Resolve(named ?? MySqlDriver.Auto);
        }

        if (keep)
            return new KeepAliveDriverDecision(driver, configured!, IsKeepAliveDriver(configured!));
        var replacement = driver == MySqlDriver.MySqlConnector ? typeof(KeepAliveMySqlConnectorDriver) : typeof(KeepAliveMySqlDataDriver);
        return new KeepAliveDriverDecision(driver, replacement.AssemblyQualifiedName!, protectsHeldConnections: true);
    }

    /// <summary>The driver <paramref name="configured"/> names (null: none), and whether to keep it rather than install NHKeepAlive's.</summary>
    private static (MySqlDriver? Named, bool Keep) Classify(string? configured)
    {
        var typeName = configured?.Split(',')[0].Trim();
        if (string.IsNullOrEmpty(typeName) || typeName == s_stockMySqlDataDriver)
            return (null, false);
        if (typeName == typeof(KeepAliveMySqlDataDriver).FullName)
            return (MySqlDriver.MySqlData, false);
        if (typeName == typeof(KeepAliveMySqlConnectorDriver).FullName)
            return (MySqlDriver.MySqlConnector, false);

        var type = TryLoad(configured!);
        if (type is not null && typeof(KeepAliveMySqlConnectorDriver).IsAssignableFrom(type))
            return (MySqlDriver.MySqlConnector, true);
        if (type is not null && typeof(MySqlDataDriver).IsAssignableFrom(type))
            return (MySqlDriver.MySqlData, true);
        if (MentionsMySqlConnector(typeName!))
            return (MySqlDriver.MySqlConnector, false);
        return (null, true);
    }

    /// <summary>The <c>connection.driver_class</c> the configured dialect supplies by itself (NHibernate merges it into the settings).</summary>
    private static string? DialectDefault(IDictionary<string, string> settings)
    {
        if (!settings.ContainsKey(Environment.Dialect))
            return null;
        try
        {
            return global::NHibernate.Dialect.Dialect.GetDialect(settings).DefaultProperties.TryGetValue(Environment.ConnectionDriver, out var value) ? value : null;
        }
#pragma warning disable CA1031 // A dialect that cannot be loaded is NHibernate's error to report.
        catch (Exception)
#pragma warning restore CA1031
        {
            return null;
        }
    }

    private static bool IsKeepAliveDriver(string configured)
    {
        var type = TryLoad(configured);
        return type is not null && (typeof(KeepAliveMySqlDataDriver).IsAssignableFrom(type) || typeof(KeepAliveMySqlConnectorDriver).IsAssignableFrom(type));
    }

    private static Type? TryLoad(string typeName)
    {
        try
        {
            return ReflectHelper.ClassForName(typeName);
        }
#pragma warning disable CA1031 // A driver that cannot be loaded is NHibernate's error to report, when it creates the driver.
        catch (Exception)
#pragma warning restore CA1031
        {
            return null;
        }
    }

#pragma warning disable CA2249 // netstandard2.0 has no string.Contains(string, StringComparison).
    private static bool MentionsMySqlConnector(string typeName) => typeName.IndexOf("MySqlConnector", StringComparison.OrdinalIgnoreCase) >= 0;
#pragma warning restore CA2249

    private static string Show(MySqlDriver driver) => driver == MySqlDriver.MySqlConnector ? "MySqlConnector" : "MySql.Data";
}
