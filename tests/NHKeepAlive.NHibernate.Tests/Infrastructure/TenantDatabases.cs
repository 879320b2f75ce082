using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using NHKeepAlive.Tests.Infrastructure;

namespace NHKeepAlive.NHibernate.Tests.Infrastructure;

/// <summary>Tenant databases on the test server (<c>nhk_tenant_NNN</c>, each with the <c>nh_note</c> table), dropped on dispose.</summary>
internal sealed class TenantDatabases : IDisposable
{
    public const string Prefix = "nhk_tenant_";

    private readonly ServerAdmin _admin;

    public TenantDatabases(ServerAdmin admin, int count)
    {
        _admin = admin;
        DropAll(admin);
        Names = Enumerable.Range(0, count).Select(i => Prefix + i.ToString("D4", CultureInfo.InvariantCulture)).ToList();
        foreach (var name in Names)
        {
            admin.Execute($"CREATE DATABASE `{name}`");
            admin.Execute($"CREATE TABLE `{name}`.nh_note (Id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, Text VARCHAR(200) NULL) ENGINE=InnoDB");
        }
    }

    /// <summary>The databases, which are the tenant identifiers.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Connections of the test user on <paramref name="database"/> now.</summary>
    public long ConnectionsOn(string database) =>
        _admin.Count($"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{TestServer.User}' AND DB = '{database}' AND ID <> CONNECTION_ID()");

    /// <summary>Connections of the test user on any tenant database now.</summary>
    public long ConnectionsOnTenants() =>
        _admin.Count($"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{TestServer.User}' AND DB LIKE '{Prefix}%' AND ID <> CONNECTION_ID()");

    public void Dispose() => DropAll(_admin);

    /// <summary>Drops every tenant database, this run's and any a crashed run left.</summary>
    private static void DropAll(ServerAdmin admin)
    {
        foreach (var name in admin.Names($"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{Prefix}%'"))
            admin.Execute($"DROP DATABASE IF EXISTS `{name}`");
    }
}
