using System.Collections.Generic;

namespace NHKeepAlive.Drivers;

/// <summary>A connection string as the pool uses it: with the driver's pooling off, with and without its password.</summary>
internal sealed class PreparedConnectionString
{
    public PreparedConnectionString(string withPassword, string withoutPassword, string withoutDatabase, string serverKey, bool autoEnlist, string? password, string defaultPoolName, IReadOnlyList<(string Name, string ConnectionString)>? hosts = null, IReadOnlyList<(KeepAliveOption Option, string Keyword, string Value)>? poolKeywords = null)
    {
        PoolKeywords = poolKeywords ?? [];
        WithPassword = withPassword;
        WithoutPassword = withoutPassword;
        WithoutDatabase = withoutDatabase;
        ServerKey = serverKey;
        AutoEnlist = autoEnlist;
        Password = password;
        DefaultPoolName = defaultPoolName;
        Hosts = hosts ?? [(defaultPoolName, withPassword)];
    }

    /// <summary>Each server of the host list (<c>Server=a,b:3307,c</c>) with the connection string that opens it alone; one entry for one server.</summary>
    public IReadOnlyList<(string Name, string ConnectionString)> Hosts { get; }

    /// <summary>
    /// The driver's pool keywords the string carried (<c>Max Pool Size</c>, <c>Connection Lifetime</c>, ...,
    /// in any alias the driver knows), each with the option it sizes, the keyword as the string wrote
    /// it, and its value; they are removed from <see cref="WithPassword"/> and <see cref="WithoutPassword"/>.
    /// </summary>
    public IReadOnlyList<(KeepAliveOption Option, string Keyword, string Value)> PoolKeywords { get; }

    /// <summary>What the pool opens connections with.</summary>
    public string WithPassword { get; }

    /// <summary>What a user may see.</summary>
    public string WithoutPassword { get; }

    /// <summary>The password, to redact it from any text a user may read.</summary>
    public string? Password { get; }

    /// <summary>Server, port and database: the pool's name unless the user gives one.</summary>
    public string DefaultPoolName { get; }

    /// <summary>The server and user connected as (no password, no database), under which the process shares what it learned of a server (its wait_timeout).</summary>
    public string ServerKey { get; }

    /// <summary><see cref="WithoutPassword"/> without the database either: what the pools of a set (a pool per tenant database) have in common.</summary>
    public string WithoutDatabase { get; }

    /// <summary>Whether the caller's string lets a connection enlist in the ambient TransactionScope (its <c>AutoEnlist</c>, true unless it says false); the pool's own string says false.</summary>
    public bool AutoEnlist { get; }
}
