namespace NHKeepAlive.Drivers;

/// <summary>What a newly opened connection was readied with for session resets.</summary>
/// <param name="Restore">The statement that restores, after a reset, what the driver set when it opened; null when a reset keeps it.</param>
/// <param name="ChangesReported">Whether the server reports session changes on this connection (<c>session_track_state_change</c>); when it does not, the pool cannot tell a clean return from a dirty one.</param>
internal sealed record SessionSetup(string? Restore, bool ChangesReported);
