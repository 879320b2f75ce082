#if WITH_NHIBERNATE
using System;
using NHibernate;
using NHibernate.Cfg;
using NHibernate.Connection;
using NHibernate.Dialect;
using NHibernate.Driver;
using NHibernate.Mapping.ByCode;
using NHKeepAlive.NHibernate;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.Demo;

/// <summary>A row the NHibernate workload writes.</summary>
public class DemoRequest
{
    public virtual int Id { get; set; }
}

/// <summary>
/// The workload through NHibernate: a pooled request is a session and a transaction per request; a
/// held request is a transaction ({BeginTransaction; write and read; Commit}) on one long session with
/// connection.release_mode=on_close.
/// </summary>
internal sealed class NHibernateApp : IDemoApp
{
    private readonly ISessionFactory _factory;
    private ISession? _held;

    public NHibernateApp(string connectionString, bool keepAlive)
    {
        Name = keepAlive ? "NHKeepAlive" : "stock NHibernate";
        var configuration = new Configuration();
        configuration.SetProperty(Environment.ConnectionString, connectionString);
        configuration.SetProperty(Environment.Dialect, typeof(MySQL57Dialect).AssemblyQualifiedName);
        configuration.SetProperty(Environment.ConnectionDriver, typeof(MySqlDataDriver).AssemblyQualifiedName);
        configuration.SetProperty(Environment.ConnectionProvider, typeof(DriverConnectionProvider).AssemblyQualifiedName);
        configuration.SetProperty(Environment.Hbm2ddlKeyWords, "none");
        var mapper = new ModelMapper();
        mapper.Class<DemoRequest>(c =>
        {
            c.Table("demo_requests");
            c.Id(r => r.Id, m => m.Generator(Generators.Assigned));
        });
        configuration.AddMapping(mapper.CompileMappingForAllExplicitlyAddedEntities());
        if (keepAlive)
            configuration.UseKeepAlive(o => o.Driver = MySqlDriver.MySqlData);
        _factory = configuration.BuildSessionFactory();
    }

    public string Name { get; }

    public void PooledRequest(int id)
    {
        using var session = _factory.OpenSession();
        using var transaction = session.BeginTransaction();
        session.Save(new DemoRequest { Id = id });
        transaction.Commit();
        session.Get<DemoRequest>(id);
    }

    public void HeldRequest(int id)
    {
        _held ??= _factory.WithOptions().ConnectionReleaseMode(ConnectionReleaseMode.OnClose).OpenSession();
        using var transaction = _held.BeginTransaction();
        _held.Save(new DemoRequest { Id = id });
        _held.Flush();
        _held.Clear();
        _held.Get<DemoRequest>(id);
        transaction.Commit();
    }

    public void RenewHeld()
    {
        _held?.Dispose();
        _held = null;
    }

    public void Dispose()
    {
        RenewHeld();
        _factory.Dispose();
    }
}
#endif
