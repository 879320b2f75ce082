using System;

namespace NHKeepAlive;

/// <summary>
/// What the process's pools learned from each server, so that a new pool (a tenant's first session) or a pool's next
/// connection spends no round trip on it: the <c>wait_timeout</c> by server (host, port and user), and what a session
/// setup learned (<see cref="Drivers.SessionFacts"/>) by driver and connection string without its database. Each serves
/// for <see cref="FreshFor"/> after it was read (a DBA may change the server's settings); the connection opened after that
/// reads it again, in the same round trip as its setup.
/// </summary>
internal static class SharedServerFacts
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (TimeSpan WaitTimeout, long ReadAt)> s_waitTimeouts = new(StringComparer.Ordinal);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (Drivers.SessionFacts Facts, long ReadAt)> s_sessions = new(StringComparer.Ordinal);

    /// <summary>How long what one connection learned serves the others.</summary>
    public static readonly TimeSpan FreshFor = TimeSpan.FromMinutes(5);

    /// <summary>Whether something read at <paramref name="readAt"/> (a <see cref="System.Diagnostics.Stopwatch"/> timestamp) is still fresh.</summary>
    public static bool IsFresh(long readAt) =>
        System.Diagnostics.Stopwatch.GetTimestamp() - readAt < (long)(FreshFor.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);

    /// <summary>The wait_timeout a pool read from the server <paramref name="serverKey"/> names, if it is fresh.</summary>
    public static TimeSpan? WaitTimeout(string serverKey) =>
        s_waitTimeouts.TryGetValue(serverKey, out var known) && IsFresh(known.ReadAt) ? known.WaitTimeout : null;

    public static void KeepWaitTimeout(string serverKey, TimeSpan waitTimeout) =>
        s_waitTimeouts[serverKey] = (waitTimeout, System.Diagnostics.Stopwatch.GetTimestamp());

    /// <summary>What a session setup learned under <paramref name="key"/>, and when, if it is fresh.</summary>
    public static (Drivers.SessionFacts Facts, long ReadAt)? Session(string key) =>
        s_sessions.TryGetValue(key, out var known) && IsFresh(known.ReadAt) ? known : null;

    public static void KeepSession(string key, Drivers.SessionFacts facts, long readAt) => s_sessions[key] = (facts, readAt);

    /// <summary>Forgets everything learned (tests that count what a server is asked).</summary>
    internal static void Forget()
    {
        s_waitTimeouts.Clear();
        s_sessions.Clear();
    }
}
