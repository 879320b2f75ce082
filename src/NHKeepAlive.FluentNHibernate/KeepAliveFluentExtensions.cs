using System;
using FluentNHibernate.Cfg;
using NHKeepAlive.NHibernate;

namespace NHKeepAlive.FluentNHibernate;

/// <summary>NHKeepAlive for FluentNHibernate.</summary>
public static class KeepAliveFluentExtensions
{
    /// <summary>
    /// Puts the session factory on NHKeepAlive:
    /// <c>Fluently.Configure().Database(MySQLConfiguration.Standard.ConnectionString(cs)).KeepAlive(o => o.MaxPoolSize = 20)</c>.
    /// The order of <c>Database</c> and <c>KeepAlive</c> does not matter. As <c>UseKeepAlive</c> does, it also
    /// installs NHKeepAlive's <c>sql_exception_converter</c>, so that a node error a statement meets
    /// (1047, 1180, 1290) leaves that node at once, unless the configuration names a converter of its own.
    /// </summary>
    /// <param name="fluent">The fluent configuration.</param>
    /// <param name="configure">Sets NHKeepAlive options.</param>
    /// <returns>The fluent configuration.</returns>
    public static FluentConfiguration KeepAlive(this FluentConfiguration fluent, Action<KeepAliveOptions>? configure = null)
    {
        if (fluent is null)
            throw new ArgumentNullException(nameof(fluent));

        // ExposeConfiguration runs when the configuration is built, after Database() has set its
        // provider, so NHKeepAlive's provider and driver win.
        return fluent.ExposeConfiguration(configuration => configuration.UseKeepAlive(configure));
    }
}
