using System;

namespace NHKeepAlive;

/// <summary>
/// One server of the connection string's host list, and what the pool knows of its health. Changed
/// only by <see cref="ServerHostSet"/>, under its lock.
/// </summary>
internal sealed class ServerHost
{
    public ServerHost(int index, string name, string connectionString)
    {
        Index = index;
        Name = name;
        ConnectionString = connectionString;
    }

    /// <summary>Its place in the list: lower is preferred.</summary>
    public int Index { get; }

    /// <summary>host:port, as logs show it.</summary>
    public string Name { get; }

    /// <summary>The connection string that opens this host alone (with the password).</summary>
    public string ConnectionString { get; }

    public bool Healthy { get; set; } = true;

    /// <summary>
    /// A lone host (a proxy's endpoint, say) that met a node error: new connections to it are checked
    /// with the node health query until one passes, as the proxy may still route to the unfit node.
    /// </summary>
    public bool Suspect { get; set; }

    /// <summary>Why it was left, while it is unhealthy.</summary>
    public string? Reason { get; set; }

    /// <summary>Advances each time it is marked unhealthy: connections opened before are closed as they come back.</summary>
    public int Generation { get; set; }

    /// <summary>When it was last probed (or marked down), on the pool's clock.</summary>
    public TimeSpan LastProbe { get; set; }
}
