using System;
using System.IO;
using System.Linq;
using NHKeepAlive.LegacySite;
using NHKeepAlive.Tests.Infrastructure;
using NHKeepAlive.Tests.Integration;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Framework;

/// <summary>
/// The sample legacy ASP.NET site (samples/NHKeepAlive.LegacySite), hosted in-process by System.Web's
/// own ApplicationHost on the .NET Framework runtime (Mono here; XSP itself does not start on Mono 6.8).
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
public class LegacySiteTests(MySqlDriver driver) : IntegrationTest(driver)
{
    private static string SampleSite()
    {
        for (var dir = new DirectoryInfo(AppDomain.CurrentDomain.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var site = Path.Combine(dir.FullName, "samples", "NHKeepAlive.LegacySite");
            if (File.Exists(Path.Combine(site, "web.config")) && Directory.Exists(Path.Combine(site, "bin")))
                return site;
        }

        throw new DirectoryNotFoundException("samples/NHKeepAlive.LegacySite with its bin folder was not found above the test assembly: build the solution first.");
    }

    /// <summary>A copy of the site whose web.config points at the test server.</summary>
    private string DeploySite()
    {
        var source = SampleSite();
        var target = Path.Combine(Path.GetTempPath(), $"nhk-site-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(target, "bin"));
        foreach (var file in Directory.GetFiles(Path.Combine(source, "bin")))
            File.Copy(file, Path.Combine(target, "bin", Path.GetFileName(file)));
        File.Copy(Path.Combine(source, "Global.asax"), Path.Combine(target, "Global.asax"));
        var webConfig = File.ReadAllText(Path.Combine(source, "web.config"))
            .Replace("Server=127.0.0.1;Port=3306;Database=shop;User ID=shop;Password=change-me;SslMode=Disabled", TestServer.ConnectionString(Driver));
        File.WriteAllText(Path.Combine(target, "web.config"), webConfig);
        return target;
    }

    [Test]
    public void The_sample_site_serves_through_NHKeepAlive_and_a_recycle_closes_its_connections()
    {
        var site = DeploySite();
        try
        {
            var host = InProcessHost.Start(site);

            var first = host.Get("status.ashx");
            var second = host.Get("status.ashx");

            TestContext.Progress.WriteLine($"status.ashx in {host.DomainName}: {second.Trim()}");
            Assert.That(first, Does.StartWith("pool 127.0.0.1:").And.Contain("active 0, idle 1, opening 0, checking 0, pending 0, max 30"), "settings from the site's web.config");
            Assert.That(second, Does.Contain("connection " + first.Split(new[] { "connection " }, StringSplitOptions.None)[1].Split(';')[0] + ";"), "the same pooled connection served both requests");
            var ids = Admin.ConnectionIds();
            Assert.That(ids, Is.Not.Empty);

            host.Recycle();

            Eventually(() => !Admin.ConnectionIds().Intersect(ids).Any(), TimeSpan.FromSeconds(10), "the recycled site's connections are closed");
        }
        finally
        {
            try
            {
                Directory.Delete(site, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
