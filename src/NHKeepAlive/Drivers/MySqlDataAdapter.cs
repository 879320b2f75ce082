using System;
using System.Data.Common;
using System.Runtime.CompilerServices;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive.Drivers;

/// <summary>MySql.Data (Oracle's Connector/NET), bound by reflection.</summary>
internal sealed class MySqlDataAdapter : ReflectionDriverAdapter
{
    private readonly Func<DbConnection, Task<bool>>? _pingAsync;
    private readonly FieldInfo? _driverField;
    private readonly MethodInfo? _hasStatus;
    private readonly object[]? _inTransactionFlag;
    private readonly object[]? _autocommitFlag;
    private readonly object[]? _stateChangedFlag;
    private readonly MethodInfo? _reset;
    private volatile string? _interceptor;
    private readonly ConstructorInfo? _loadInterceptors;
    private readonly ConditionalWeakTable<DbConnection, StatementWatch> _watches = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _interceptorsLoad = new(StringComparer.Ordinal);

    private MySqlDataAdapter(Type connectionType, DbProviderFactory factory)
        : base("MySql.Data", connectionType, factory)
    {
        var pingAsync = connectionType.GetMethod("PingAsync", BindingFlags.Public | BindingFlags.Instance, null, Type.EmptyTypes, null);
        if (pingAsync is not null && pingAsync.ReturnType == typeof(Task<bool>))
            _pingAsync = (Func<DbConnection, Task<bool>>)CreateDelegate(pingAsync, typeof(Func<DbConnection, Task<bool>>));

        // MySqlConnection.driver.HasStatus(ServerStatusFlags.InTransaction): the status flag the
        // server sends in every OK packet, so it also sees a START TRANSACTION sent as plain SQL.
        _driverField = connectionType.GetField("driver", BindingFlags.NonPublic | BindingFlags.Instance);
        var flags = connectionType.Assembly.GetType("MySql.Data.MySqlClient.ServerStatusFlags");
        _hasStatus = _driverField?.FieldType.GetMethod("HasStatus", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance);
        if (flags is not null && _hasStatus is not null)
        {
            _inTransactionFlag = [Enum.ToObject(flags, 1)];     // SERVER_STATUS_IN_TRANS
            _autocommitFlag = [Enum.ToObject(flags, 2)];        // SERVER_STATUS_AUTOCOMMIT
            _stateChangedFlag = [Enum.ToObject(flags, 0x4000)]; // SERVER_SESSION_STATE_CHANGED
        }

        // Driver.Reset(): COM_CHANGE_USER, what MySql.Data's own pool runs for ConnectionReset=true.
        _reset = _driverField?.FieldType.GetMethod("Reset", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance, null, Type.EmptyTypes, null);
        _interceptor = BindInterceptor(connectionType);

        // MySql.Data's own loader (CommandInterceptor(MySqlConnection), internal): what each Open runs.
        _loadInterceptors = connectionType.Assembly.GetType("MySql.Data.MySqlClient.CommandInterceptor")
            ?.GetConstructor(BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance, null, [connectionType], null);
    }

    /// <summary>The interceptor that shows the pool every statement, as named in a connection string; null when it cannot be loaded.</summary>
    internal string? Interceptor => _interceptor;

    /// <summary>
    /// Binds NHKeepAlive.MySqlData's <c>StatementInterceptor</c> (a MySql.Data command interceptor, kept in
    /// its own assembly so that this one never loads MySql.Data's types) to <see cref="Observe"/>, once
    /// it is known to load against the application's MySql.Data; null otherwise (say, an older MySql.Data
    /// on .NET Framework without a binding redirect), and the pool sees the status flags alone.
    /// </summary>
    private string? BindInterceptor(Type connectionType)
    {
        const string name = "NHKeepAlive.MySqlData.StatementInterceptor, NHKeepAlive.MySqlData";
        try
        {
            var type = Type.GetType(name, throwOnError: false);
            var baseType = connectionType.Assembly.GetType("MySql.Data.MySqlClient.BaseCommandInterceptor");
            var observer = type?.GetProperty("Observer", BindingFlags.NonPublic | BindingFlags.Static);
            if (type is null || baseType is null || observer is null || !baseType.IsAssignableFrom(type))
                return null;
            observer.SetValue(null, (Action<DbConnection, string?>)Observe);
            return name;
        }
        catch (Exception e) when (e is System.IO.IOException or TypeLoadException or BadImageFormatException or TargetInvocationException or MemberAccessException)
        {
            return null;
        }
    }

    /// <summary>Called by the interceptor before each command of every connection it is loaded in (the pool watches only its own, from <see cref="PrepareSession"/> on).</summary>
    private void Observe(DbConnection connection, string? sql)
    {
        if (_watches.TryGetValue(connection, out var watch))
            watch.Saw(sql);
    }

    protected override bool ChecksConnectionStringOnConnection => true;

    protected override void Complete(DbConnectionStringBuilder builder)
    {
        if (_interceptor is not { } interceptor)
            return;
        var existing = builder.TryGetValue("CommandInterceptors", out var value) ? Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) : null;
        if (existing is { Length: > 0 } && existing.Contains(interceptor))
            return;
        var interceptors = existing is { Length: > 0 } ? $"{existing}|{interceptor}" : interceptor;
        builder["CommandInterceptors"] = interceptors;

        // Asked once per list of interceptors, not once per pool: a process with a pool per tenant builds many.
        if (_interceptorsLoad.GetOrAdd(interceptors, _ => LoadsInterceptors(builder.ConnectionString)))
            return;

        // MySql.Data could not load it from where it looks (another load context, say): every Open would
        // fail. The pool goes on without it, with the status flags alone.
        _interceptor = null;
        if (existing is { Length: > 0 })
            builder["CommandInterceptors"] = existing;
        else
            builder.Remove("CommandInterceptors");
    }

    /// <summary>Whether MySql.Data's own loader, run as an Open runs it, loads the interceptors <paramref name="connectionString"/> names (true when that loader is not found).</summary>
    private bool LoadsInterceptors(string connectionString)
    {
        if (_loadInterceptors is null)
            return true;
        try
        {
            using var connection = CreateConnection(connectionString);
            _loadInterceptors.Invoke([connection]);
            return true;
        }
        catch (TargetInvocationException)
        {
            return false;
        }
    }

    public override MySqlDriver Kind => MySqlDriver.MySqlData;

    public override bool KnowsTransactionState => _inTransactionFlag is not null;

    public override bool KeepsStatusFlags => _stateChangedFlag is not null;

    /// <summary>
    /// MySql.Data begins its transaction inside System.Transactions' promotable enlistment (its promoter's
    /// <c>Initialize</c>). .NET and .NET Framework take the promoter only once <c>Initialize</c> succeeded; Mono's
    /// System.Transactions keeps one whose <c>Initialize</c> failed, refuses every later promoter and calls the
    /// failed one's <c>Rollback</c> at the end (a NullReferenceException inside MySql.Data). There the error surfaces.
    /// </summary>
    public override bool EnlistsAgainAfterFailure => !s_onMono;

    private static readonly bool s_onMono = Type.GetType("Mono.Runtime") is not null;

    public override bool CanResetSession => _reset is not null;

    public static MySqlDataAdapter? TryCreate()
    {
        var connectionType = LoadType("MySql.Data.MySqlClient.MySqlConnection, MySql.Data");
        var factory = FactoryInstance(connectionType?.Assembly.GetType("MySql.Data.MySqlClient.MySqlClientFactory"));
        return connectionType is null || factory is null ? null : new MySqlDataAdapter(connectionType, factory);
    }

    protected override Task<bool> PingCoreAsync(DbConnection connection, CancellationToken cancellationToken) =>
        _pingAsync is null ? Task.FromResult(PingSync(connection)) : _pingAsync(connection);

    public override bool? IsInTransaction(DbConnection connection) => HasStatus(connection, _inTransactionFlag);

    /// <summary>
    /// From every statement the connection ran (the interceptor's record, <see cref="StatementClassifier"/>),
    /// and from the status flags of the server's last reply: autocommit off (it stays off in every reply
    /// after), or a session change by the last statement (SERVER_SESSION_STATE_CHANGED, which
    /// <see cref="PrepareSession"/> turns on). Without the interceptor the driver's flags are all there is:
    /// they last one reply, so a change followed by other statements, and named locks (never tracked by
    /// the server), go unseen.
    /// </summary>
    public override bool? SessionMayHaveChanged(DbConnection connection)
    {
        var watched = _watches.TryGetValue(connection, out var watch);
        if (watched && watch!.TakeChanged())
            return true; // the flags, which reading leaves as they are, can add nothing
        var autocommit = HasStatus(connection, _autocommitFlag);
        var changed = HasStatus(connection, _stateChangedFlag);
        if (autocommit == false || changed == true)
            return true;
        return !watched && (autocommit is null || changed is null) ? null : false;
    }

    public override SessionSetup? PrepareSession(DbConnection connection, SessionFacts? known)
    {
        ForgetSession(connection);
        var setup = PrepareTracking(connection, known);
        if (_interceptor is null)
            return setup;

        // From here on (the pool's own setup statements behind it), every statement is judged. Where the
        // server reports no session changes (before MariaDB 10.2 or MySQL 5.7), every return stays reset:
        // a change made inside a stored procedure, say, would go unseen.
        _watches.Add(connection, new StatementWatch());
        return setup;
    }

    public override void ForgetSession(DbConnection connection) => _watches.Remove(connection);

    /// <summary>What turns session tracking on when the character sets (the restore) are known already; DO 0 last, so that the reply the driver keeps reports no session change of our own making.</summary>
    private const string TrackingOn = "SET SESSION session_track_state_change = 1; DO 0";

    /// <summary>
    /// Turns on session state tracking (a session variable: every connection, one round trip), and, when
    /// <paramref name="known"/> does not say them yet, reads in the same round trip the character sets
    /// MySql.Data set at open (for the restore after a reset) and the session wait_timeout.
    /// </summary>
    private static SessionSetup PrepareTracking(DbConnection connection, SessionFacts? known)
    {
        if (known is not null)
        {
            // A server that reports no session changes refused the variable before: nothing to ask it.
            if (!known.ChangesReported)
                return new SessionSetup(known.Restore, ChangesReported: false);
            try
            {
                Execute(connection, TrackingOn);
            }
            catch (DbException)
            {
                return new SessionSetup(known.Restore, ChangesReported: false); // this connection's returns are all reset
            }

            return new SessionSetup(known.Restore, ChangesReported: true);
        }

        string text;
        try
        {
            using var command = connection.CreateCommand();

            // Binary, so that MySql.Data 8.0 need not decode MariaDB's utf8mb3 names. The SELECT last: its reply,
            // the one the driver keeps, reports no session change of our own making.
            command.CommandText = "SET SESSION session_track_state_change = 1; SELECT CAST(CONCAT_WS(' ', @@character_set_client, @@collation_connection, IFNULL(@@character_set_results, 'NULL'), CAST(@@SESSION.wait_timeout AS SIGNED)) AS BINARY)";
            text = command.ExecuteScalar() switch
            {
                byte[] bytes => System.Text.Encoding.ASCII.GetString(bytes),
                var other => Convert.ToString(other, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty,
            };
        }
        catch (DbException)
        {
            // A server without session state tracking (MySQL 5.6, MariaDB before 10.2): changes go unreported.
            // Not kept: the next connection asks again (an error of the moment must not stand for the server).
            return new SessionSetup(null, ChangesReported: false);
        }

        var parts = text.Split(' ');
        TimeSpan? waitTimeout = parts.Length == 4 && long.TryParse(parts[3], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            ? TimeSpan.FromSeconds(seconds)
            : null;
        string restore;
        if (parts.Length != 4)
        {
            restore = TrackingOn;
        }
        else
        {
            var results = parts[2] == "NULL" ? "NULL" : $"'{parts[2]}'";
            restore = $"SET SESSION session_track_state_change = 1, character_set_client = '{parts[0]}', collation_connection = '{parts[1]}', character_set_results = {results}; DO 0";
        }

        return new SessionSetup(restore, ChangesReported: true, new SessionFacts(restore, ChangesReported: true, IsolationAtOpen: null, waitTimeout));
    }

    public override bool ResetSession(DbConnection connection, string? restore)
    {
        var driver = _reset is null ? null : _driverField!.GetValue(connection);
        if (driver is null)
            return false;
        try
        {
            _reset!.Invoke(driver, null);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
        }

        if (restore is not null)
            Execute(connection, restore);

        // The restore's own SET is no caller's change.
        if (_watches.TryGetValue(connection, out var watch))
            watch.Clear();
        return true;
    }

    private bool? HasStatus(DbConnection connection, object[]? flag)
    {
        if (flag is null)
            return null;
        try
        {
            var driver = _driverField!.GetValue(connection);
            return driver is null ? null : (bool)_hasStatus!.Invoke(driver, flag)!;
        }
        catch (Exception e) when (e is TargetInvocationException or InvalidCastException or NullReferenceException)
        {
            return null;
        }
    }

    public override void RollBack(DbConnection connection) => ExecuteRollback(connection);
}
