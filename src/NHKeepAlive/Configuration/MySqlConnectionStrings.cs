using System;

namespace NHKeepAlive;

/// <summary>Connection string edits made with the driver's own connection string builder, so that every alias it knows is understood.</summary>
public static class MySqlConnectionStrings
{
    /// <summary>
    /// <paramref name="connectionString"/> with its database replaced by <paramref name="database"/>: the
    /// driver's builder reads the database under any name it knows (<c>Database</c>, <c>Initial Catalog</c>),
    /// and every other option (server, credentials, pool keywords) is kept. For a database per tenant.
    /// </summary>
    /// <param name="connectionString">The connection string to start from.</param>
    /// <param name="database">The database the result names.</param>
    /// <param name="driver">Whose builder to use; <see cref="MySqlDriver.Auto"/> as <see cref="MySqlDriverChoice.Resolve"/> decides.</param>
    /// <returns>The connection string naming <paramref name="database"/>.</returns>
    /// <exception cref="ArgumentException">The connection string is not one the driver can read, or the database is empty.</exception>
    /// <exception cref="KeepAliveConfigurationException">The driver is not referenced.</exception>
    public static string WithDatabase(string connectionString, string database, MySqlDriver driver = MySqlDriver.Auto)
    {
        if (connectionString is null)
            throw new ArgumentNullException(nameof(connectionString));
        if (string.IsNullOrEmpty(database))
            throw new ArgumentException("The database name is empty.", nameof(database));
        return Drivers.DriverAdapter.Resolve(driver).WithDatabase(connectionString, database);
    }
}
