using System;
using System.Collections.Generic;

namespace NHKeepAlive.Lifetime;

/// <summary>
/// Stops every live pool when its app domain goes: on <see cref="AppDomain.DomainUnload"/> (an ASP.NET
/// recycle, a child domain unloaded), on process exit, and, in ASP.NET on .NET Framework, when the
/// hosting environment asks registered objects to stop. Not every host raises all of them (Mono's
/// System.Web never calls IRegisteredObject.Stop), so all are hooked; stopping twice is harmless.
/// No timer or connection outlives its domain.
/// </summary>
internal static class PoolLifetime
{
    private static readonly object s_lock = new();
    private static readonly List<WeakReference<KeepAlivePool>> s_pools = [];
    private const int MinSweepAt = 64;
    private static int s_sweepAt = MinSweepAt;
    private static bool s_hooked;

    public static void Register(KeepAlivePool pool)
    {
        lock (s_lock)
        {
            // Pools collected without a Dispose leave dead references: swept when the list has doubled since the last
            // sweep, not at every registration (a pool per tenant registers by the thousand).
            if (s_pools.Count >= s_sweepAt)
            {
                s_pools.RemoveAll(w => !w.TryGetTarget(out _));
                s_sweepAt = Math.Max(MinSweepAt, s_pools.Count * 2);
            }

            s_pools.Add(new WeakReference<KeepAlivePool>(pool));
            if (s_hooked)
                return;
            s_hooked = true;
        }

        AppDomain.CurrentDomain.DomainUnload += (_, _) => StopAll();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => StopAll();
#if NETFRAMEWORK
        AspNetRegistration.TryRegister();
#endif
    }

    public static void Unregister(KeepAlivePool pool)
    {
        lock (s_lock)
            s_pools.RemoveAll(w => !w.TryGetTarget(out var p) || ReferenceEquals(p, pool));
    }

    /// <summary>Disposes every live pool and closes its connections, those in use included: the domain is going.</summary>
    public static void StopAll()
    {
        List<KeepAlivePool> pools = [];
        lock (s_lock)
        {
            foreach (var weak in s_pools)
            {
                if (weak.TryGetTarget(out var pool))
                    pools.Add(pool);
            }

            s_pools.Clear();
        }

        foreach (var pool in pools)
            pool.Shutdown();
    }
}
