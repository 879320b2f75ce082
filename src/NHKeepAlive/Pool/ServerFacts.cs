using System;

namespace NHKeepAlive;

/// <summary>
/// What the pool has learned from the server, held as one immutable value and swapped whole: the
/// session <c>wait_timeout</c>, and the keepalive interval and validation bypass window derived from it.
/// </summary>
internal sealed class ServerFacts
{
    public ServerFacts(TimeSpan? waitTimeout, TimeSpan? keepAliveInterval, TimeSpan bypassWindow, int learnedInGeneration)
    {
        WaitTimeout = waitTimeout;
        KeepAliveInterval = keepAliveInterval;
        BypassWindow = bypassWindow;
        LearnedInGeneration = learnedInGeneration;
    }

    /// <summary>The server's session wait_timeout; null before it was read, or if it could not be.</summary>
    public TimeSpan? WaitTimeout { get; }

    /// <summary>How long an idle connection may wait before its keepalive ping; null when the keepalive is off.</summary>
    public TimeSpan? KeepAliveInterval { get; }

    /// <summary>A connection seen alive within this window is handed out without a ping.</summary>
    public TimeSpan BypassWindow { get; }

    /// <summary>The pool generation the wait_timeout was read in (-1: not yet); it is read again after each disconnect.</summary>
    public int LearnedInGeneration { get; }

    /// <summary>The facts before the first connection: the configured interval, and the bypass window it allows.</summary>
    public static ServerFacts Initial(KeepAliveOptions options) => From(options, null, -1);

    /// <summary>The facts for a server whose wait_timeout is <paramref name="waitTimeout"/>.</summary>
    public static ServerFacts From(KeepAliveOptions options, TimeSpan? waitTimeout, int generation)
    {
        var interval = KeepAliveIntervalFor(options.KeepAliveInterval, waitTimeout);

        // The window must stay well inside the time a connection can idle safely, however short the
        // server's wait_timeout is.
        var window = options.ValidationBypassWindow;
        if (interval is { } i)
            window = Min(window, TimeSpan.FromTicks(i.Ticks / 2));
        if (waitTimeout is { } wait && wait > TimeSpan.Zero)
            window = Min(window, TimeSpan.FromTicks(wait.Ticks / 4));
        return new ServerFacts(waitTimeout, interval, window, generation);
    }

    /// <summary>The keepalive interval for a server wait_timeout: half of it, capped by the configured interval, never under 250 ms.</summary>
    internal static TimeSpan? KeepAliveIntervalFor(TimeSpan configured, TimeSpan? serverWaitTimeout)
    {
        if (configured <= TimeSpan.Zero)
            return null;
        if (serverWaitTimeout is not { } wait || wait <= TimeSpan.Zero)
            return configured;
        var half = TimeSpan.FromTicks(wait.Ticks / 2);
        var interval = half < configured ? half : configured;
        return interval < PoolSettings.MinimumKeepAliveInterval ? PoolSettings.MinimumKeepAliveInterval : interval;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
