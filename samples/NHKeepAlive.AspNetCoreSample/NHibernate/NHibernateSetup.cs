using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using NHibernate;
using NHibernate.Mapping.ByCode;

namespace NHKeepAlive.AspNetCoreSample.NHibernate;

/// <summary>The NHibernate line (built with -p:WithNHibernate=true): a session factory on its own pool and a session per request.</summary>
internal static class NHibernateSetup
{
    public static void Add(WebApplicationBuilder builder)
    {
        builder.Services.AddKeepAliveNHibernate(builder.Configuration.GetSection("NHKeepAlive"), factory =>
        {
            var mapper = new ModelMapper();
            mapper.Class<SampleNote>(map =>
            {
                map.Table("sample_note");
                map.Id(note => note.Id, id => id.Generator(Generators.Identity));
                map.Property(note => note.Text);
            });
            factory.AddMapping(mapper.CompileMappingForAllExplicitlyAddedEntities());
        });
    }

    public static void Map(WebApplication app)
    {
        // A unit of work through the request's session.
        app.MapGet("/nh", async (global::NHibernate.ISession session) =>
        {
            await session.CreateSQLQuery("CREATE TABLE IF NOT EXISTS sample_note (Id BIGINT AUTO_INCREMENT PRIMARY KEY, Text VARCHAR(255) NOT NULL)").ExecuteUpdateAsync();
            using var transaction = session.BeginTransaction();
            await session.SaveAsync(new SampleNote { Text = "hello" });
            var notes = await session.QueryOver<SampleNote>().RowCountAsync();
            await transaction.CommitAsync();
            return Results.Text($"notes: {notes}\n");
        });
    }
}
