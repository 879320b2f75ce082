#if NETFRAMEWORK
using System.Web.Hosting;

namespace NHKeepAlive.Lifetime;

/// <summary>
/// Registers with ASP.NET's hosting environment, so that an app-domain recycle stops the pools (their
/// keepalive timers and connections) before the domain goes.
/// </summary>
internal sealed class AspNetRegistration : IRegisteredObject
{
    public static void TryRegister()
    {
        if (HostingEnvironment.IsHosted)
            HostingEnvironment.RegisterObject(new AspNetRegistration());
    }

    public void Stop(bool immediate)
    {
        PoolLifetime.StopAll();
        HostingEnvironment.UnregisterObject(this);
    }
}
#endif
