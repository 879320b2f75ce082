using NHibernate.Cfg;
using NHibernate.Cfg.MappingSchema;
using NHibernate.Dialect;
using NHibernate.Driver;
using NHibernate.Mapping.ByCode;
using NHKeepAlive.NHibernate;
using NHKeepAlive.Tests.Infrastructure;
using Environment = NHibernate.Cfg.Environment;

namespace NHKeepAlive.NHibernate.Tests.Infrastructure;

/// <summary>The entity the tests save and load.</summary>
public class Note
{
    public virtual int Id { get; set; }

    public virtual string Text { get; set; } = string.Empty;
}

internal static class Mappings
{
    public static HbmMapping Notes()
    {
        var mapper = new ModelMapper();
        mapper.Class<Note>(c =>
        {
            c.Table("nh_note");
            c.Id(n => n.Id, m => m.Generator(Generators.Identity));
            c.Property(n => n.Text, m => m.Length(200));
        });
        return mapper.CompileMappingForAllExplicitlyAddedEntities();
    }

    /// <summary>A plain NHibernate configuration for the test server, with the stock MySQL driver (or NHKeepAlive's for MySqlConnector, NHibernate having none).</summary>
    public static Configuration Configuration(MySqlDriver driver)
    {
        var configuration = new Configuration();
        configuration.SetProperty(Environment.ConnectionString, TestServer.ConnectionString(driver));
        configuration.SetProperty(Environment.Dialect, typeof(MySQL57Dialect).AssemblyQualifiedName);
        configuration.SetProperty(Environment.ConnectionDriver, driver == MySqlDriver.MySqlData
            ? typeof(MySqlDataDriver).AssemblyQualifiedName
            : typeof(KeepAliveMySqlConnectorDriver).AssemblyQualifiedName);
        configuration.SetProperty(Environment.Hbm2ddlKeyWords, "none");
        configuration.AddMapping(Notes());
        return configuration;
    }
}
