namespace NHKeepAlive.Drivers;

/// <summary>A connection string as the pool uses it: with the driver's pooling off, with and without its password.</summary>
internal sealed class PreparedConnectionString
{
    public PreparedConnectionString(string withPassword, string withoutPassword, string? password, string defaultPoolName)
    {
        WithPassword = withPassword;
        WithoutPassword = withoutPassword;
        Password = password;
        DefaultPoolName = defaultPoolName;
    }

    /// <summary>What the pool opens connections with.</summary>
    public string WithPassword { get; }

    /// <summary>What a user may see.</summary>
    public string WithoutPassword { get; }

    /// <summary>The password, to redact it from any text a user may read.</summary>
    public string? Password { get; }

    /// <summary>Server, port and database: the pool's name unless the user gives one.</summary>
    public string DefaultPoolName { get; }
}
