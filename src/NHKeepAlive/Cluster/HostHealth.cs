namespace NHKeepAlive;

/// <summary>One host of the pool's host list and its health, as <see cref="PoolStatistics.Hosts"/> shows it.</summary>
public sealed class HostHealth
{
    internal HostHealth(string name, bool healthy, string? reason)
    {
        Name = name;
        Healthy = healthy;
        Reason = reason;
    }

    /// <summary>host:port.</summary>
    public string Name { get; }

    /// <summary>Whether new connections may go to it.</summary>
    public bool Healthy { get; }

    /// <summary>Why it was left, while it is unhealthy.</summary>
    public string? Reason { get; }

    /// <summary>The host in one line.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => Healthy ? $"{Name} healthy" : $"{Name} left: {Reason}";
}
