using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;

namespace NHKeepAlive.Drivers;

/// <summary>
/// Sees every statement a MySqlConnector connection runs, through MySqlConnector's own tracing (its
/// <c>MySqlConnector</c> <see cref="ActivitySource"/>: one activity per command, tagged with the server's
/// connection id and the statement's text), and marks the pooled connections whose session a statement
/// may have changed (<see cref="StatementClassifier"/>). MySqlConnector keeps none of the server's status
/// flags, so this is how the pool tells a clean return from a dirty one without a round trip.
/// <para>
/// A transaction begun through <c>BeginTransaction</c> also counts as a change (MySqlConnector sets the
/// session's isolation level when it begins one) unless it leaves the level the session opened with. A command still running when the connection comes back
/// counts too. The listener asks MySqlConnector for its activities' data (statement text included); it
/// does not mark them recorded, so it changes nothing an application's own trace exporter sends.
/// </para>
/// </summary>
#pragma warning disable CA1001 // One for the process, listening for the process's life.
internal sealed class MySqlConnectorCommandObserver
#pragma warning restore CA1001
{
    private const string SourceName = "MySqlConnector";
    private static readonly Lazy<MySqlConnectorCommandObserver> s_instance = new(() => new MySqlConnectorCommandObserver());

    private readonly object _lock = new();

    // By server connection id: connections to different servers may share one, and each is marked
    // (a needless reset at worst, never a missed one).
    private readonly Dictionary<int, List<Watch>> _watches = [];
    private readonly ActivityListener _listener;
    private volatile bool _sourceSeen;

    private MySqlConnectorCommandObserver()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source =>
            {
                if (source.Name != SourceName)
                    return false;
                _sourceSeen = true;
                return true;
            },
            // The data (statement text included) of what can change a session; nothing else is asked for.
            Sample = static (ref ActivityCreationOptions<ActivityContext> options) =>
                options.Name is "Execute" or "Commit" or "Rollback" ? ActivitySamplingResult.AllData : ActivitySamplingResult.None,
            ActivityStarted = OnStarted,
            ActivityStopped = OnStopped,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public static MySqlConnectorCommandObserver Instance => s_instance.Value;

    /// <summary>Whether MySqlConnector's activity source exists (2.1 and later) and is listened to.</summary>
    public bool Sees => _sourceSeen;

    /// <summary>Starts watching the session of the connection with server id <paramref name="connectionId"/>.</summary>
    public Watch Start(int connectionId)
    {
        var watch = new Watch(connectionId);
        lock (_lock)
        {
            if (!_watches.TryGetValue(connectionId, out var list))
                _watches[connectionId] = list = new List<Watch>(1);
            list.Add(watch);
        }

        return watch;
    }

    /// <summary>Whether any command of the watched connection has been seen.</summary>
    public bool HasSeen(Watch watch)
    {
        lock (_lock)
            return watch.Seen;
    }

    /// <summary>Stops watching (the connection closed or reopened).</summary>
    public void Stop(Watch watch)
    {
        lock (_lock)
        {
            if (_watches.TryGetValue(watch.ConnectionId, out var list) && list.Remove(watch) && list.Count == 0)
                _watches.Remove(watch.ConnectionId);
        }
    }

    // The callbacks run inside the application's commands: nothing may escape them (a statement the
    // classifier fails to judge is a change; see StatementClassifier.Classify).
    private void OnStarted(Activity activity)
    {
        if (ConnectionId(activity) is not { } id)
            return;

        // Commit and Rollback: a transaction begun through the API, which set the session's isolation
        // level (still the connection's current transaction while its commit or rollback starts).
        var transaction = activity.OperationName != "Execute";
        lock (_lock)
        {
            if (!_watches.TryGetValue(id, out var list))
                return;
            foreach (var watch in list)
            {
                watch.Running++;
                watch.Seen = true;
                if (transaction && !LeavesSessionClean(watch))
                    watch.Changed = true;
            }
        }
    }

    private void OnStopped(Activity activity)
    {
        if (ConnectionId(activity) is not { } id)
            return;
        var changed = activity.OperationName == "Execute"
            && !StatementClassifier.LeavesSessionClean((activity.GetTagItem("db.query.text") ?? activity.GetTagItem("db.statement")) as string);

        lock (_lock)
        {
            if (!_watches.TryGetValue(id, out var list))
                return;
            foreach (var watch in list)
            {
                if (watch.Running > 0)
                    watch.Running--; // a watch started while this command ran never counted it
                watch.Seen = true;
                if (changed)
                    watch.Changed = true;
            }
        }
    }

    /// <summary>Whether the session may have changed since the last call, which clears the record: a statement seen to change it, or one still running.</summary>
    public bool TakeChanged(Watch watch)
    {
        lock (_lock)
        {
            var changed = watch.Changed || watch.Running > 0;
            watch.Changed = false;
            return changed;
        }
    }

    private static bool LeavesSessionClean(Watch watch)
    {
        try
        {
            return watch.TransactionLeavesSessionClean?.Invoke() == true;
        }
#pragma warning disable CA1031 // See above: never into the application's command.
        catch (Exception)
#pragma warning restore CA1031
        {
            return false;
        }
    }

    /// <summary>The server connection id of a command's, a commit's or a rollback's activity (not an Open's, which gets its id on the way).</summary>
    private static int? ConnectionId(Activity activity) =>
        activity.Source.Name == SourceName && activity.OperationName is ("Execute" or "Commit" or "Rollback")
            && activity.GetTagItem("db.connection_id") is string text
            && int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var id) ? id : null;

    /// <summary>What was seen of one connection's session since it was last cleared; its fields are read and written under the observer's lock.</summary>
    internal sealed class Watch(int connectionId)
    {
        public int ConnectionId { get; } = connectionId;

        /// <summary>Commands begun and not yet ended.</summary>
        public int Running { get; set; }

        /// <summary>Whether a statement or a transaction may have changed the session since the last <see cref="MySqlConnectorCommandObserver.TakeChanged"/>.</summary>
        public bool Changed { get; set; }

        /// <summary>Whether any activity of the connection was seen at all (the check that the connection id matches).</summary>
        public bool Seen { get; set; }

        /// <summary>Whether the connection's current transaction, as its commit or rollback starts, leaves the session as it opened (null: never assumed).</summary>
        public Func<bool>? TransactionLeavesSessionClean { get; set; }
    }
}
