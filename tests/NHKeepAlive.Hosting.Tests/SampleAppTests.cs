using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Hosting.Tests;

/// <summary>The ASP.NET Core sample, started in-process, through a KILL of every connection of the test user.</summary>
[TestFixture]
public sealed class SampleAppTests
{
    private static WebApplicationFactory<Program> Start() =>
        new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseEnvironment("Development");
            web.ConfigureAppConfiguration((_, configuration) => configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["NHKeepAlive:ConnectionString"] = HostedPools.ConnectionString,
                ["NHKeepAlive:ShutdownGracePeriod"] = "0",
            }));
        });

    [Test]
    public async Task The_page_and_the_health_endpoint_see_no_error_through_a_KILL_of_every_connection()
    {
        using var factory = Start();
        using var client = factory.CreateClient();
        using var admin = new ServerAdmin();
        var errors = new List<string>();
        var requests = 0;

        async Task Get(string path, string expect)
        {
            requests++;
            using var response = await client.GetAsync(new Uri(path, UriKind.Relative));
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode != HttpStatusCode.OK || !body.Contains(expect, StringComparison.Ordinal))
                errors.Add($"{path}: {(int)response.StatusCode} {body}");
        }

        async Task Round()
        {
            // Concurrent requests, so that the pool holds more than one connection to be killed.
            var work = new List<Task>();
            for (var i = 0; i < 4; i++)
                work.Add(Get("/", "visits: "));
            await Task.WhenAll(work);
            await Get("/health", "\"status\":\"Healthy\"");
        }

        await Round();
        await Round();
        var ids = admin.ConnectionIds();
        Assert.That(ids, Is.Not.Empty, "the sample holds pooled connections");
        admin.KillAll(ids);
        Assert.That(admin.WaitForConnectionCount(n => n == 0, TimeSpan.FromSeconds(5)), Is.True, "every connection of the test user is gone");

        await Round();
        await Round();
        admin.KillAll(admin.ConnectionIds());
        await Round();

        TestContext.Out.WriteLine($"{requests} requests, {errors.Count} errors; killed {ids.Count} connection(s) the first time");
        Assert.That(errors, Is.Empty);
        using var stats = await client.GetAsync(new Uri("/stats", UriKind.Relative));
        TestContext.Out.WriteLine(await stats.Content.ReadAsStringAsync());
    }
}
