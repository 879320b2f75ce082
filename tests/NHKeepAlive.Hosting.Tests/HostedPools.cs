using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NHKeepAlive.Tests.Infrastructure;

namespace NHKeepAlive.Hosting.Tests;

/// <summary>Hosts and connection strings the tests share.</summary>
internal static class HostedPools
{
    /// <summary>The test server's connection string for MySqlConnector.</summary>
    public static string ConnectionString => TestServer.ConnectionString(MySqlDriver.MySqlConnector);

    /// <summary>A generic host whose services <paramref name="services"/> fills, with <paramref name="settings"/> as its configuration.</summary>
    public static IHost Build(Action<IServiceCollection, IConfiguration> services, IDictionary<string, string?>? settings = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        if (settings is not null)
            builder.Configuration.AddInMemoryCollection(settings);
        services(builder.Services, builder.Configuration);
        return builder.Build();
    }

    /// <summary>A port on 127.0.0.1 that nothing listens on (bound, then released).</summary>
    public static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
