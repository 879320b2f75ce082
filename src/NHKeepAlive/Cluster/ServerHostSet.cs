using System;
using System.Collections.Generic;
using System.Linq;

namespace NHKeepAlive;

/// <summary>
/// The servers a pool may open connections to, in the order of preference the connection string
/// gives (<c>Server=a,b,c</c>), and the rules: new connections go to the first healthy host; a host
/// marked unhealthy is left (its generation advances, so the pool closes its connections as they come
/// back) and probed again every probe interval; when a host before the current one is healthy again,
/// the pool fails back to it as connections retire. One host alone is never left: there is nowhere else.
/// </summary>
internal sealed class ServerHostSet
{
    private readonly object _lock = new();
    private readonly ServerHost[] _hosts;

    public ServerHostSet(IReadOnlyList<(string Name, string ConnectionString)> hosts)
    {
        if (hosts is null || hosts.Count == 0)
            throw new ArgumentException("At least one host is needed.", nameof(hosts));
        _hosts = hosts.Select((h, i) => new ServerHost(i, h.Name, h.ConnectionString)).ToArray();
    }

    /// <summary>More than one host: node health is checked and failover is the pool's.</summary>
    public bool IsCluster => _hosts.Length > 1;

    public IReadOnlyList<ServerHost> All => _hosts;

    /// <summary>The host new connections go to: the first healthy one (the first of all when none is).</summary>
    public ServerHost Preferred
    {
        get
        {
            lock (_lock)
                return _hosts.FirstOrDefault(h => h.Healthy) ?? _hosts[0];
        }
    }

    /// <summary>The hosts to try for a new connection: healthy ones in order, then the others, longest unprobed first.</summary>
    public IReadOnlyList<ServerHost> OpenOrder()
    {
        lock (_lock)
            return [.. _hosts.Where(h => h.Healthy), .. _hosts.Where(h => !h.Healthy).OrderBy(h => h.LastProbe)];
    }

    /// <summary>Leaves a host. True if it was healthy until now (the caller then closes its idle connections).</summary>
    public bool MarkDown(ServerHost host, string reason, TimeSpan now)
    {
        lock (_lock)
        {
            host.LastProbe = now;
            if (!host.Healthy)
            {
                host.Reason = reason;
                return false;
            }

            host.Generation++;
            if (!IsCluster)
            {
                // Nowhere else to go: the generation closes its connections, and new ones are checked
                // until one is fit (behind a proxy, they reach another node once the proxy moves).
                host.Suspect = true;
                return true;
            }

            host.Healthy = false;
            host.Reason = reason;
            return true;
        }
    }

    /// <summary>Takes a host back. True if it was unhealthy until now.</summary>
    public bool MarkUp(ServerHost host, TimeSpan now)
    {
        lock (_lock)
        {
            host.LastProbe = now;
            host.Suspect = false;
            if (host.Healthy)
                return false;
            host.Healthy = true;
            host.Reason = null;
            return true;
        }
    }

    /// <summary>Unhealthy hosts not probed for <paramref name="interval"/>.</summary>
    public IReadOnlyList<ServerHost> DueForProbe(TimeSpan now, TimeSpan interval)
    {
        lock (_lock)
            return [.. _hosts.Where(h => !h.Healthy && now - h.LastProbe >= interval)];
    }

    /// <summary>
    /// Why a connection to <paramref name="host"/> opened in its generation <paramref name="generation"/>
    /// must not be handed out again, or null: its host was left since, or a host before it is healthy (failback).
    /// </summary>
    public (EvictionReason Reason, string Detail)? Verdict(ServerHost host, int generation)
    {
        lock (_lock)
        {
            if (host.Generation != generation || !host.Healthy)
                return (EvictionReason.HostUnhealthy, $"its host {host.Name} was left ({host.Reason ?? "a node error"})");
            var preferred = _hosts.FirstOrDefault(h => h.Healthy);
            if (preferred is not null && preferred.Index < host.Index)
                return (EvictionReason.Failback, $"{preferred.Name}, before {host.Name} in the host list, is healthy again");
            return null;
        }
    }

    /// <summary>Each host and its health, for statistics.</summary>
    public IReadOnlyList<HostHealth> Snapshot()
    {
        lock (_lock)
            return [.. _hosts.Select(h => new HostHealth(h.Name, h.Healthy, h.Reason))];
    }
}
