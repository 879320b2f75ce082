using NHibernate.Engine;
using NHibernate.MultiTenancy;

namespace NHKeepAlive.NHibernate.Tests.Infrastructure;

/// <summary>The stock way to a database per tenant, to compare with: the tenant's connection string made from a template, on NHibernate's DriverConnectionProvider and the driver's own pool.</summary>
public sealed class StockTenantProvider : AbstractMultiTenancyConnectionProvider
{
    /// <summary>The connection string with <c>{database}</c> for the database; set before the factory is built.</summary>
    internal static string Template { get; set; } = string.Empty;

    protected override string GetTenantConnectionString(TenantConfiguration tenantConfiguration, ISessionFactoryImplementor sessionFactory) =>
        Template.Replace("{database}", tenantConfiguration.TenantIdentifier);
}
