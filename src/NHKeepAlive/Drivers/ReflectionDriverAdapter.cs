using System;
using System.Data;
using System.Data.Common;
using System.Linq;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive.Drivers;

/// <summary>
/// A driver bound by reflection to the assembly the application references, so that NHKeepAlive
/// depends on neither MySql.Data nor MySqlConnector.
/// </summary>
internal abstract class ReflectionDriverAdapter : DriverAdapter
{
    private readonly DbProviderFactory _factory;
    private readonly Func<DbConnection, bool> _ping;
    private readonly PropertyInfo? _serverThread;

    protected ReflectionDriverAdapter(string name, Type connectionType, DbProviderFactory factory)
    {
        Name = name;
        ConnectionType = connectionType;
        _factory = factory;
        var ping = connectionType.GetMethod("Ping", BindingFlags.Public | BindingFlags.Instance, null, Type.EmptyTypes, null)
            ?? throw new NotSupportedException($"{name}: {connectionType.FullName} has no public Ping() method; this version of the driver is not supported.");
        _ping = (Func<DbConnection, bool>)CreateDelegate(ping, typeof(Func<DbConnection, bool>));
        _serverThread = connectionType.GetProperty("ServerThread", BindingFlags.Public | BindingFlags.Instance);
    }

    public override string Name { get; }

    // Read once: every pool records it with its first connection (DriverCapabilities).
    public override string Version => _version ??=
        ConnectionType.Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>() is { } info
            ? info.InformationalVersion.Split('+')[0]
            : ConnectionType.Assembly.GetName().Version?.ToString() ?? "unknown";

    private string? _version;

    /// <summary>The driver's connection type.</summary>
    public Type ConnectionType { get; }

    public override PreparedConnectionString PrepareConnectionString(string connectionString)
    {
        var builder = _factory.CreateConnectionStringBuilder()
            ?? throw new NotSupportedException($"{Name} offers no connection string builder.");
        System.Collections.Generic.List<(KeepAliveOption Option, string Keyword, string Value)> poolKeywords;
        bool autoEnlist;
        try
        {
            builder.ConnectionString = connectionString;
            poolKeywords = TakePoolKeywords(builder, connectionString);

            // The caller's AutoEnlist (the driver's default, true, when the string does not say), before the pool's own says false.
            // (The driver's indexer knows every alias, and answers its default for a key the string left out.)
            autoEnlist = !string.Equals(Convert.ToString(builder["AutoEnlist"], System.Globalization.CultureInfo.InvariantCulture), "false", StringComparison.OrdinalIgnoreCase);
            builder["Pooling"] = false;

            // The pool enlists handles in system transactions itself (KeepAliveConnection); the driver must never
            // enlist a physical connection it opens for the pool in whatever transaction is ambient at that moment.
            builder["AutoEnlist"] = false;
            builder["Persist Security Info"] = false;
            Complete(builder);

            // Some options are refused only when a connection takes the string (MySql.Data's Pipe= on Linux).
            if (ChecksConnectionStringOnConnection)
            {
                using var probe = CreateConnection(builder.ConnectionString);
            }
        }
#pragma warning disable CA1031 // Whatever the driver throws for a bad string becomes one clear configuration error.
        catch (Exception e)
#pragma warning restore CA1031
        {
            var password = PasswordOf(connectionString);
            var culprit = FindRejectedOption(connectionString);
            var message = $"The connection string is not valid for {Name}{(culprit is null ? string.Empty : $": the option '{culprit}' was refused")} ({e.GetType().Name}: {e.Message}). " +
                "Fix or remove that option; write the string as 'Server=host;Port=3306;Database=db;User ID=user;Password=...'.";
            throw new KeepAliveConfigurationException(password is { Length: > 0 } ? message.Replace(password, "***") : message, e);
        }

        var server = Get(builder, "Server") ?? "localhost";
        var port = Get(builder, "Port") ?? "3306";
        var database = Get(builder, "Database");
        var withPassword = builder.ConnectionString;
        var hosts = SplitHosts(builder, server, port);
        var secret = Get(builder, "Password");
        var serverKey = $"{server}|{port}|{Get(builder, "User ID")}";
        builder.Remove("Password");
        var withoutPassword = builder.ConnectionString;
        builder.Remove("Database");
        var name = hosts.Count == 1 ? $"{hosts[0].Name}/{database}" : $"{string.Join(",", hosts.Select(h => h.Name))}/{database}";
        return new PreparedConnectionString(withPassword, withoutPassword, builder.ConnectionString, serverKey, autoEnlist, secret, name, hosts, poolKeywords);
    }

    /// <summary>
    /// Whether the driver refuses some options only when a connection takes the string, not in its builder, so that a
    /// pool's string is tried on a connection when the pool is built (MySql.Data: <c>Pipe=</c> on Linux). A pool per
    /// tenant is built often: a driver whose builder checks everything is spared the connection.
    /// </summary>
    protected virtual bool ChecksConnectionStringOnConnection => false;

    public override string WithDatabase(string connectionString, string database)
    {
        // The driver's own builder maps every alias of the database keyword onto one key.
        var builder = _factory.CreateConnectionStringBuilder()
            ?? throw new NotSupportedException($"{Name} offers no connection string builder.");
        builder.ConnectionString = connectionString;
        builder["Database"] = database;
        return builder.ConnectionString;
    }

    /// <summary>
    /// Removes the driver's pool keywords (<see cref="KeepAliveOption.ConnectionStringKeywords"/>) from
    /// <paramref name="builder"/> and returns them for the pool's options. The driver's own builder
    /// decides what is a pool keyword: each known spelling is mapped to the driver's canonical key, and
    /// the builder has already mapped whatever alias the string used onto that same key.
    /// </summary>
    private System.Collections.Generic.List<(KeepAliveOption Option, string Keyword, string Value)> TakePoolKeywords(DbConnectionStringBuilder builder, string original)
    {
        var found = new System.Collections.Generic.List<(KeepAliveOption Option, string Keyword, string Value)>();
        var present = new DbConnectionStringBuilder { ConnectionString = builder.ConnectionString };
        foreach (var option in KeepAliveOptionTable.All)
        {
            foreach (var keyword in option.ConnectionStringKeywords)
            {
                if (PoolKeywordKey(keyword) is not { } key || !present.TryGetValue(key, out var value) || value is null)
                    continue;
                present.Remove(key);
                builder.Remove(key);
                var text = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty;
                found.Add((option, WrittenAs(original, key) ?? keyword, text));
            }
        }

        return found;
    }

    // Pool keyword -> the driver's key for it (null: the driver does not know it): the same for every pool, asked once.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string?> _poolKeywordKeys = new(StringComparer.Ordinal);

    /// <summary>The key under which this driver's builder stores the pool keyword <paramref name="keyword"/>, or null if the driver does not know it (a process with a pool per tenant builds many pools).</summary>
    private string? PoolKeywordKey(string keyword) => _poolKeywordKeys.GetOrAdd(keyword, k => CanonicalKey(k, "1"));

    /// <summary>The key under which this driver's builder stores <paramref name="keyword"/>, or null if the driver does not know it.</summary>
    private string? CanonicalKey(string keyword, object? value)
    {
        try
        {
            var single = _factory.CreateConnectionStringBuilder()!;
            single[keyword] = value;
            var keys = new DbConnectionStringBuilder { ConnectionString = single.ConnectionString }.Keys;
            return keys.Count == 1 ? keys.Cast<string>().Single() : null;
        }
#pragma warning disable CA1031 // A keyword or value the driver refuses in any way is not the one sought.
        catch (Exception)
#pragma warning restore CA1031
        {
            return null;
        }
    }

    /// <summary>How <paramref name="original"/> spelled the keyword stored under <paramref name="key"/>, for messages.</summary>
    private string? WrittenAs(string original, string key)
    {
        DbConnectionStringBuilder generic;
        try
        {
            generic = new DbConnectionStringBuilder { ConnectionString = original };
        }
        catch (ArgumentException)
        {
            return null;
        }

        foreach (string written in generic.Keys)
        {
            if (string.Equals(written, key, StringComparison.OrdinalIgnoreCase) || string.Equals(CanonicalKey(written, generic[written]), key, StringComparison.OrdinalIgnoreCase))
                return OriginalCase(original, written);
        }

        return null;
    }

    /// <summary>The generic builder lower-cases keys; find the spelling the user typed.</summary>
    private static string OriginalCase(string original, string key)
    {
        var at = original.IndexOf(key, StringComparison.OrdinalIgnoreCase);
        return at < 0 ? key : original.Substring(at, key.Length);
    }

    /// <summary>Adds what this driver's connections need from the pool to a connection string the pool will open.</summary>
    protected virtual void Complete(DbConnectionStringBuilder builder)
    {
    }

    /// <summary>
    /// The host list (<c>Server=a,b:3307,[::1]:3308</c>), each host with a connection string that names
    /// it alone: the pool opens every host on its own and never relies on the driver's multi-host mode.
    /// </summary>
    private System.Collections.Generic.List<(string Name, string ConnectionString)> SplitHosts(DbConnectionStringBuilder builder, string server, string port)
    {
        var list = new System.Collections.Generic.List<(string Name, string ConnectionString)>();
        var entries = server.Split(',').Select(e => e.Trim()).Where(e => e.Length > 0).ToArray();
        if (entries.Length <= 1 && server.IndexOf(':') < 0)
            return [($"{server}:{port}", builder.ConnectionString)];
        foreach (var entry in entries)
        {
            var (host, hostPort) = SplitPort(entry, port);
            var single = _factory.CreateConnectionStringBuilder()!;
            single.ConnectionString = builder.ConnectionString;
            single["Server"] = host;
            try
            {
                single["Port"] = uint.Parse(hostPort, System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
            {
                throw new KeepAliveConfigurationException($"The connection string's host list has '{entry}', whose port is not a number. Write hosts as 'Server=a,b:3307,c' (a host without a port takes Port=).", e);
            }

            list.Add(($"{host}:{hostPort}", single.ConnectionString));
        }

        return list;
    }

    private static (string Host, string Port) SplitPort(string entry, string defaultPort)
    {
        if (entry.Length > 0 && entry[0] == '[')
        {
            var close = entry.IndexOf(']');
            var host = close < 0 ? entry : entry.Substring(1, close - 1);
            return (host, close >= 0 && close + 1 < entry.Length && entry[close + 1] == ':' ? entry.Substring(close + 2) : defaultPort);
        }

        var colon = entry.LastIndexOf(':');
        return colon > 0 && entry.IndexOf(':') == colon ? (entry.Substring(0, colon), entry.Substring(colon + 1)) : (entry, defaultPort);
    }

    /// <summary>The first key=value of <paramref name="connectionString"/> that the driver refuses on its own, if one is.</summary>
    private string? FindRejectedOption(string connectionString)
    {
        DbConnectionStringBuilder generic;
        try
        {
            generic = new DbConnectionStringBuilder { ConnectionString = connectionString };
        }
        catch (ArgumentException)
        {
            return null; // Not even key=value pairs: the message says so.
        }

        foreach (string key in generic.Keys)
        {
            try
            {
                var single = _factory.CreateConnectionStringBuilder()!;
                single[key] = generic[key];
                using var probe = CreateConnection(single.ConnectionString);
            }
#pragma warning disable CA1031 // Any refusal names the culprit.
            catch (Exception)
#pragma warning restore CA1031
            {
                return key;
            }
        }

        return null;
    }

    private static string? PasswordOf(string connectionString)
    {
        try
        {
            var generic = new DbConnectionStringBuilder { ConnectionString = connectionString };
            foreach (var key in new[] { "Password", "pwd" })
            {
                if (generic.TryGetValue(key, out var value) && value?.ToString() is { Length: > 0 } text)
                    return text;
            }
        }
        catch (ArgumentException)
        {
        }

        return null;
    }

    public override DbConnection CreateConnection(string connectionString)
    {
        var connection = _factory.CreateConnection() ?? throw new NotSupportedException($"{Name} created no connection.");
        connection.ConnectionString = connectionString;
        return connection;
    }

    public override DbCommand CreateCommand() => _factory.CreateCommand() ?? throw new NotSupportedException($"{Name} created no command.");

    public override async ValueTask<bool> PingAsync(DbConnection connection, bool async, CancellationToken cancellationToken)
    {
        try
        {
            return async ? await PingCoreAsync(connection, cancellationToken).ConfigureAwait(false) : _ping(connection);
        }
#pragma warning disable CA1031 // A ping that fails in any way (including its cancellation by the pool's timeout) means "not alive".
        catch (Exception)
#pragma warning restore CA1031
        {
            return false;
        }
    }

    protected bool PingSync(DbConnection connection) => _ping(connection);

    protected abstract Task<bool> PingCoreAsync(DbConnection connection, CancellationToken cancellationToken);

    public override int? ServerThreadId(DbConnection connection)
    {
        try
        {
            return _serverThread?.GetValue(connection) is int id ? id : null;
        }
        catch (Exception e) when (e is TargetInvocationException or InvalidOperationException)
        {
            return null;
        }
    }

    protected static void ExecuteRollback(DbConnection connection) => Execute(connection, "ROLLBACK");

    /// <summary>Runs <paramref name="sql"/> on the connection, for nothing but its effect.</summary>
    protected static void Execute(DbConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    protected static Delegate CreateDelegate(MethodInfo method, Type delegateType)
    {
        // Open-instance delegates bound to the base type: (DbConnection c) => ((DriverConnection)c).Method().
        var parameters = delegateType.GetMethod("Invoke")!.GetParameters();
        var connection = System.Linq.Expressions.Expression.Parameter(parameters[0].ParameterType, "connection");
        var args = new System.Linq.Expressions.ParameterExpression[parameters.Length - 1];
        for (var i = 1; i < parameters.Length; i++)
            args[i - 1] = System.Linq.Expressions.Expression.Parameter(parameters[i].ParameterType, parameters[i].Name);
        var call = System.Linq.Expressions.Expression.Call(
            System.Linq.Expressions.Expression.Convert(connection, method.DeclaringType!), method, args);
        var all = new System.Linq.Expressions.ParameterExpression[parameters.Length];
        all[0] = connection;
        Array.Copy(args, 0, all, 1, args.Length);
        return System.Linq.Expressions.Expression.Lambda(delegateType, call, all).Compile();
    }

    protected static Type? LoadType(string assemblyQualifiedName)
    {
        try
        {
            return Type.GetType(assemblyQualifiedName, throwOnError: false);
        }
        catch (Exception e) when (e is System.IO.FileLoadException or BadImageFormatException or TypeLoadException)
        {
            return null;
        }
    }

    protected static DbProviderFactory? FactoryInstance(Type? factoryType) =>
        factoryType?.GetField("Instance", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as DbProviderFactory;

    private static string? Get(DbConnectionStringBuilder builder, string key) =>
        builder.TryGetValue(key, out var value) && value is not null && value.ToString() is { Length: > 0 } text ? text : null;

}
