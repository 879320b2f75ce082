using System;
using System.IO;
using System.Web;
using System.Web.Hosting;

namespace NHKeepAlive.LegacySite;

/// <summary>
/// Serves the site in-process, without IIS or XSP: <see cref="ApplicationHost.CreateApplicationHost"/>
/// makes the ASP.NET app domain, and requests go through <see cref="HttpRuntime.ProcessRequest(HttpWorkerRequest)"/>.
/// The tests use it to request status.ashx and to end the application as a recycle would.
/// </summary>
#pragma warning disable CA1822 // Members are called across app domains, on the instance.
public sealed class InProcessHost : MarshalByRefObject
{
    /// <summary>Creates the site's app domain on <paramref name="physicalPath"/> (its bin\ holds this assembly).</summary>
    /// <param name="physicalPath">The site's folder.</param>
    /// <returns>The host, in the site's domain.</returns>
    public static InProcessHost Start(string physicalPath) =>
        (InProcessHost)ApplicationHost.CreateApplicationHost(typeof(InProcessHost), "/", physicalPath);

    /// <summary>Requests a page and returns the response body.</summary>
    /// <param name="page">The page, e.g. status.ashx.</param>
    /// <returns>The response.</returns>
    public string Get(string page)
    {
        using var writer = new StringWriter();
        HttpRuntime.ProcessRequest(new SimpleWorkerRequest(page, string.Empty, writer));
        return writer.ToString();
    }

    /// <summary>Ends the application as a recycle would: ASP.NET unloads its app domain.</summary>
    public void Recycle() => HttpRuntime.UnloadAppDomain();

    /// <summary>The app domain the site runs in.</summary>
    public string DomainName => AppDomain.CurrentDomain.FriendlyName;

    /// <summary>Keeps the host alive as long as the site runs.</summary>
    /// <returns>Null: no lease expiry.</returns>
    public override object? InitializeLifetimeService() => null;
}
#pragma warning restore CA1822
