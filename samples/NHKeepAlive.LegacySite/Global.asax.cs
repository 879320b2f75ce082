using System;
using System.Web;

namespace NHKeepAlive.LegacySite;

/// <summary>
/// Starts the pool from web.config (connection string "Shop", nhkeepalive.* appSettings) when the
/// application starts, and stops it when the application ends. NHKeepAlive also stops it by itself
/// when the app domain unloads, for hosts that never call Application_End.
/// </summary>
public class SiteApplication : HttpApplication
{
    /// <summary>The site's pool.</summary>
    public static KeepAlivePool? Pool { get; private set; }

#if WITH_NHIBERNATE
    /// <summary>The site's session factory, from the &lt;hibernate-configuration&gt; section.</summary>
    public static global::NHibernate.ISessionFactory? SessionFactory { get; private set; }
#endif

    /// <summary>Application start.</summary>
    protected void Application_Start(object sender, EventArgs e)
    {
        Pool = new KeepAlivePool(KeepAliveAppConfig.Load("Shop"));
#if WITH_NHIBERNATE
        SessionFactory = new global::NHibernate.Cfg.Configuration().Configure().BuildSessionFactory();
#endif
    }

    /// <summary>Application end.</summary>
    protected void Application_End(object sender, EventArgs e)
    {
#if WITH_NHIBERNATE
        SessionFactory?.Dispose();
#endif
        Pool?.Dispose();
    }
}
