using System;

namespace NHKeepAlive.Drivers;

/// <summary>What a newly opened connection was readied with for session resets.</summary>
/// <param name="Restore">The statement that restores, after a reset, what the driver set when it opened; null when a reset keeps it.</param>
/// <param name="ChangesReported">Whether the server reports session changes on this connection (<c>session_track_state_change</c>); when it does not, the pool cannot tell a clean return from a dirty one.</param>
/// <param name="Learned">What this setup learned by asking the server (null when it asked nothing, knowing it already): the pool keeps it for the next connections.</param>
internal sealed record SessionSetup(string? Restore, bool ChangesReported, SessionFacts? Learned = null);

/// <summary>
/// What readying one connection for session resets learned from the server that holds for every connection opened
/// with the same connection string on the same server, so that the connections after it are readied without
/// asking again (<see cref="DriverAdapter.PrepareSession"/>): read in one round trip with the first connection, and
/// again after a disconnect or once it is a few minutes old.
/// </summary>
/// <param name="Restore">The statement that restores, after a reset, what the driver set when it opened (MySql.Data's character sets); null when a reset keeps it.</param>
/// <param name="ChangesReported">Whether the pool can tell a clean return from a dirty one on this server: the server reports session changes (MySql.Data), or the driver's tracing was seen to report this server's connections (MySqlConnector).</param>
/// <param name="IsolationAtOpen">The isolation level a session opens with, as the server names it (<c>REPEATABLE-READ</c>); null when unknown.</param>
/// <param name="WaitTimeout">The session <c>wait_timeout</c>, read in the same round trip; null when it was not.</param>
internal sealed record SessionFacts(string? Restore, bool ChangesReported, string? IsolationAtOpen, TimeSpan? WaitTimeout);
