using System;
using System.Reflection;
using NHibernate;
using NHibernate.Cfg;
using NHibernate.Cfg.MappingSchema;
using NHibernate.Dialect;
using NHibernate.Tool.hbm2ddl;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate;

/// <summary>
/// From a connection string and mappings to an <see cref="ISessionFactory"/> on NHKeepAlive, for
/// applications that start from nothing. It hides nothing: <see cref="Configuration"/> is NHibernate's
/// own, to change as you like before <see cref="Build"/>.
/// </summary>
/// <example>
/// <code>
/// var factory = new KeepAliveSessionFactoryBuilder("Server=db;Database=shop;User ID=app;Password=...")
///     .KeepAlive(o => o.MaxPoolSize = 20)
///     .AddMappings(typeof(Order).Assembly)
///     .CurrentSessionContext("web")
///     .Build();
/// </code>
/// </example>
public sealed class KeepAliveSessionFactoryBuilder
{
    private Action<KeepAliveOptions>? _keepAlive;

    /// <summary>Starts from a connection string, MySQL 5.7 dialect (right for MariaDB 10.x too) and NHKeepAlive defaults.</summary>
    /// <param name="connectionString">The MySQL/MariaDB connection string.</param>
    public KeepAliveSessionFactoryBuilder(string connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new KeepAliveConfigurationException("No connection string was given to KeepAliveSessionFactoryBuilder.");
        Configuration = new Configuration();
        Configuration.SetProperty(Environment.ConnectionString, connectionString);
        Configuration.SetProperty(Environment.Dialect, typeof(MySQL57Dialect).AssemblyQualifiedName);
    }

    /// <summary>NHibernate's configuration, for anything this builder does not cover.</summary>
    public Configuration Configuration { get; }

    /// <summary>Sets NHKeepAlive options.</summary>
    /// <param name="configure">Changes the options.</param>
    /// <returns>This builder.</returns>
    public KeepAliveSessionFactoryBuilder KeepAlive(Action<KeepAliveOptions> configure)
    {
        _keepAlive += configure;
        return this;
    }

    /// <summary>Uses another dialect (e.g. <see cref="MySQL8Dialect"/>).</summary>
    /// <typeparam name="TDialect">The dialect.</typeparam>
    /// <returns>This builder.</returns>
    public KeepAliveSessionFactoryBuilder Dialect<TDialect>()
        where TDialect : Dialect
    {
        Configuration.SetProperty(Environment.Dialect, typeof(TDialect).AssemblyQualifiedName);
        return this;
    }

    /// <summary>Adds the hbm.xml mappings embedded in an assembly.</summary>
    /// <param name="assembly">The assembly.</param>
    /// <returns>This builder.</returns>
    public KeepAliveSessionFactoryBuilder AddMappings(Assembly assembly)
    {
        Configuration.AddAssembly(assembly);
        return this;
    }

    /// <summary>Adds mappings made in code (NHibernate's ModelMapper).</summary>
    /// <param name="mapping">The compiled mapping.</param>
    /// <returns>This builder.</returns>
    public KeepAliveSessionFactoryBuilder AddMapping(HbmMapping mapping)
    {
        Configuration.AddMapping(mapping);
        return this;
    }

    /// <summary>
    /// Chooses how <c>ISessionFactory.GetCurrentSession()</c> finds the current session:
    /// <c>thread_static</c>, <c>async_local</c>, <c>call</c>, or <c>web</c> (ASP.NET on .NET Framework).
    /// Bind and unbind sessions with NHibernate's <c>CurrentSessionContext</c>.
    /// </summary>
    /// <param name="context">The context's short name or type name.</param>
    /// <returns>This builder.</returns>
    public KeepAliveSessionFactoryBuilder CurrentSessionContext(string context)
    {
        Configuration.SetProperty(Environment.CurrentSessionContextClass, context);
        return this;
    }

    /// <summary>Builds the session factory; NHKeepAlive's options are checked now.</summary>
    /// <returns>The factory. Disposing it stops its pool.</returns>
    public ISessionFactory Build() => Prepared().BuildSessionFactory();

    /// <summary>Creates the mapped tables (NHibernate's SchemaExport), dropping existing ones first.</summary>
    public void CreateSchema() => new SchemaExport(Prepared()).Create(useStdOut: false, execute: true);

    /// <summary>Adds missing tables and columns (NHibernate's SchemaUpdate).</summary>
    public void UpdateSchema() => new SchemaUpdate(Prepared()).Execute(useStdOut: false, doUpdate: true);

    private Configuration Prepared() => Configuration.UseKeepAlive(_keepAlive);
}
