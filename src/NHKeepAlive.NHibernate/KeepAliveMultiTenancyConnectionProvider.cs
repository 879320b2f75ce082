using System;
using System.Collections.Concurrent;
using System.Threading;
using NHibernate.Engine;
using NHibernate.MultiTenancy;

namespace NHKeepAlive.NHibernate;

/// <summary>
/// NHibernate multi-tenancy with a database per tenant on NHKeepAlive: a tenant's connection string is the
/// configured one (<c>connection.connection_string</c>) with its database replaced by the tenant identifier, made
/// with the driver's own connection string builder (so <c>Initial Catalog</c> and the other aliases are understood,
/// and pool keywords such as <c>Max Pool Size</c> are kept for every tenant's pool). Each tenant's connection
/// string gets one pool of <see cref="KeepAliveConnectionProvider"/>, built on its first session and retired after
/// <c>nhkeepalive.tenant_pool_retire_after</c> without a loan. The session factory's connection provider must be
/// <see cref="KeepAliveConnectionProvider"/>; <see cref="KeepAliveConfiguration.UseKeepAliveMultiTenancy(global::NHibernate.Cfg.Configuration, Action{KeepAliveOptions})"/>
/// configures both in one line. Override <see cref="TenantConnectionString"/> for another mapping from tenant to
/// connection string (another server, other credentials).
/// </summary>
/// <example>
/// <code>
/// configuration.UseKeepAliveMultiTenancy();
/// using var session = factory.WithOptions().Tenant(new TenantConfiguration("tenant_042")).OpenSession();
/// </code>
/// </example>
[Serializable]
public class KeepAliveMultiTenancyConnectionProvider : AbstractMultiTenancyConnectionProvider
{
    /// <summary>The longest tenant identifier taken as a database name: MySQL's limit for a database name.</summary>
    public const int MaxTenantIdentifierLength = 64;

    // Tenant identifier -> connection string, for one configured connection string and driver: a session's open
    // does not parse a connection string. Bounded: cleared when it grows past this.
    private const int MaxCached = 10_000;

    [NonSerialized]
    private Known? _known;

    // The connection provider of the factory this serves (NHibernate builds one multi-tenancy provider per factory).
    [NonSerialized]
    private KeepAliveConnectionProvider? _serving;

    /// <inheritdoc />
    /// <exception cref="KeepAliveConfigurationException">The session factory's connection provider is not <see cref="KeepAliveConnectionProvider"/>.</exception>
    protected override string GetTenantConnectionString(TenantConfiguration tenantConfiguration, ISessionFactoryImplementor sessionFactory)
    {
        if (tenantConfiguration is null)
            throw new ArgumentNullException(nameof(tenantConfiguration));
        if (sessionFactory is null)
            throw new ArgumentNullException(nameof(sessionFactory));
        if (sessionFactory.ConnectionProvider is not KeepAliveConnectionProvider provider)
        {
            throw new KeepAliveConfigurationException(
                $"{nameof(KeepAliveMultiTenancyConnectionProvider)} needs NHKeepAlive's connection provider, but the session factory's is {sessionFactory.ConnectionProvider?.GetType().FullName ?? "none"}: set connection.provider to {KeepAliveConfiguration.ProviderTypeName} (UseKeepAliveMultiTenancy() does both).");
        }

        Volatile.Write(ref _serving, provider);
        var connectionString = TenantConnectionString(tenantConfiguration, provider.ConfiguredConnectionString);
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new KeepAliveConfigurationException($"No connection string was made for the tenant '{tenantConfiguration.TenantIdentifier}'.");
        return connectionString;
    }

    /// <summary>
    /// The connection string of <paramref name="tenant"/>: by default <paramref name="configuredConnectionString"/>
    /// with its database replaced by the tenant identifier, which must be a plain database name (letters, digits,
    /// <c>_</c>, <c>$</c>, <c>-</c>, at most <see cref="MaxTenantIdentifierLength"/> characters). Called for every
    /// session; the default caches its answers.
    /// </summary>
    /// <param name="tenant">The session's tenant.</param>
    /// <param name="configuredConnectionString">The session factory's configured connection string.</param>
    /// <returns>The tenant's connection string.</returns>
    /// <exception cref="KeepAliveConfigurationException">The tenant identifier is not a plain database name.</exception>
    protected virtual string TenantConnectionString(TenantConfiguration tenant, string configuredConnectionString)
    {
        if (tenant is null)
            throw new ArgumentNullException(nameof(tenant));
        if (configuredConnectionString is null)
            throw new ArgumentNullException(nameof(configuredConnectionString));
        var identifier = tenant.TenantIdentifier;
        var known = Volatile.Read(ref _known);
        if (known is null || !string.Equals(known.ConfiguredConnectionString, configuredConnectionString, StringComparison.Ordinal))
        {
            // The driver of the factory being served: tenants' strings are read with its builder.
            known = new Known(configuredConnectionString, Volatile.Read(ref _serving) is { } serving ? serving.MySqlDriver : MySqlDriver.Auto);
            Volatile.Write(ref _known, known);
        }

        if (identifier is not null && known.ByTenant.TryGetValue(identifier, out var connectionString))
            return connectionString;

        ValidateTenantIdentifier(identifier);
        connectionString = MySqlConnectionStrings.WithDatabase(configuredConnectionString, identifier!, known.Driver);
        if (known.ByTenant.Count >= MaxCached)
            known.ByTenant.Clear();
        known.ByTenant[identifier!] = connectionString;
        return connectionString;
    }

    /// <summary>Throws unless <paramref name="identifier"/> is a plain database name: letters, digits, <c>_</c>, <c>$</c>, <c>-</c>, 1 to <see cref="MaxTenantIdentifierLength"/> characters.</summary>
    /// <param name="identifier">The tenant identifier.</param>
    /// <exception cref="KeepAliveConfigurationException">It is not.</exception>
    public static void ValidateTenantIdentifier(string? identifier)
    {
        if (string.IsNullOrEmpty(identifier))
            throw new KeepAliveConfigurationException("The tenant identifier is empty; it names the tenant's database.");
        if (identifier!.Length > MaxTenantIdentifierLength)
            throw new KeepAliveConfigurationException($"The tenant identifier '{identifier}' is {identifier.Length} characters long; as a database name it may have at most {MaxTenantIdentifierLength}.");
        foreach (var c in identifier)
        {
            if (!char.IsLetterOrDigit(c) && c is not ('_' or '$' or '-'))
                throw new KeepAliveConfigurationException($"The tenant identifier '{identifier}' has the character '{c}'; as a database name it may have only letters, digits, '_', '$' and '-'. Override TenantConnectionString to map such tenants to their databases.");
        }
    }

    /// <summary>Tenants' connection strings made from one configured connection string.</summary>
    private sealed class Known(string configuredConnectionString, MySqlDriver driver)
    {
        public string ConfiguredConnectionString { get; } = configuredConnectionString;

        public MySqlDriver Driver { get; } = driver;

        public ConcurrentDictionary<string, string> ByTenant { get; } = new(StringComparer.Ordinal);
    }
}
