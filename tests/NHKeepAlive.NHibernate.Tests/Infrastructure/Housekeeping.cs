using System;
using System.Reflection;

namespace NHKeepAlive.NHibernate.Tests.Infrastructure;

/// <summary>The process's housekeeping scheduler as tests see it (it is internal to the core; read by reflection).</summary>
internal static class Housekeeping
{
    private static readonly Lazy<object> s_shared = new(() =>
    {
        var type = typeof(KeepAlivePool).Assembly.GetType("NHKeepAlive.HousekeepingScheduler", throwOnError: true)!;
        return type.GetProperty("Shared", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
    });

    /// <summary>The scheduler's threads alive now.</summary>
    public static int Threads => Read("Threads");

    /// <summary>Registrations now: one per live pool, one per pool set that retires pools.</summary>
    public static int Registered => Read("Registered");

    private static int Read(string property) =>
        (int)s_shared.Value.GetType().GetProperty(property, BindingFlags.Public | BindingFlags.Instance)!.GetValue(s_shared.Value)!;
}
