using System;
using System.Globalization;
using System.Web;

namespace NHKeepAlive.LegacySite;

/// <summary>status.ashx: one query through the pool, then the pool's state, as plain text.</summary>
public sealed class StatusHandler : IHttpHandler
{
    /// <inheritdoc />
    public bool IsReusable => true;

    /// <inheritdoc />
    public void ProcessRequest(HttpContext context)
    {
        var pool = SiteApplication.Pool ?? throw new InvalidOperationException("The pool was not started: Application_Start did not run.");
        long connectionId;
        using (var lease = pool.Lease())
        {
            using var command = lease.Connection.CreateCommand();
            command.CommandText = "SELECT CONNECTION_ID()";
            connectionId = Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        var stats = pool.GetStatistics();
        context.Response.ContentType = "text/plain";
        context.Response.Write(FormattableString.Invariant(
            $"pool {pool.Name}: connection {connectionId}; {stats}; keepalive every {stats.KeepAliveInterval?.TotalSeconds ?? 0:0.#} s; server wait_timeout {stats.ServerWaitTimeout?.TotalSeconds ?? 0:0} s\n"));
    }
}
