using System;
using System.Collections.Generic;
using NHibernate;
using NHibernate.Exceptions;
using NHibernate.Util;

namespace NHKeepAlive.NHibernate;

/// <summary>
/// NHibernate's <c>sql_exception_converter</c> on NHKeepAlive: before NHibernate converts an error a
/// statement met, it tells the pool about it (<see cref="KeepAlivePool.ReportFailure"/>), on the
/// connection that ran the statement. A node error (1047, 1180, 1290) then leaves that node at once and
/// closes its idle connections; a disconnect evicts the connection when the session gives it back. The
/// conversion itself is the dialect's own (NHibernate's <see cref="SQLStateConverter"/> for the MySQL
/// dialects), so the exceptions the application sees do not change, and nothing is retried.
/// </summary>
/// <remarks>
/// <see cref="KeepAliveConfiguration.UseKeepAlive"/>, <see cref="KeepAliveSessionFactoryBuilder"/> and
/// FluentNHibernate's <c>KeepAlive()</c> install it unless the configuration names a converter of its
/// own. A configuration that names only the connection provider (hibernate.cfg.xml, web.config) must
/// name it too, as <c>sql_exception_converter</c>: NHibernate builds the converter before it creates the
/// connection provider, which therefore cannot install it. Errors of <c>BeginTransaction</c> are
/// reported by NHKeepAlive's drivers; an error of the ADO.NET commit itself reaches no converter and is
/// found by validation and the keepalive.
/// </remarks>
public class KeepAliveSqlExceptionConverter : ISQLExceptionConverter, IConfigurable
{
    /// <summary>The <c>sql_exception_converter</c> value that selects this converter.</summary>
    public static readonly string TypeName = typeof(KeepAliveSqlExceptionConverter).AssemblyQualifiedName!;

    private ISQLExceptionConverter _inner;

    /// <summary>Creates the converter with NHibernate's conversion and no constraint name extraction.</summary>
    public KeepAliveSqlExceptionConverter()
        : this(new NoOpViolatedConstraintNameExtracter())
    {
    }

    /// <summary>Creates the converter; NHibernate calls this one, with the dialect's constraint name extracter.</summary>
    /// <param name="extracter">The dialect's constraint name extracter.</param>
    public KeepAliveSqlExceptionConverter(IViolatedConstraintNameExtracter extracter)
    {
        _inner = new SQLStateConverter(extracter);
    }

    /// <summary>The converter that does the conversion: the dialect's own once configured.</summary>
    public ISQLExceptionConverter Inner => _inner;

    /// <summary>
    /// Takes the dialect's own converter (<c>Dialect.BuildSQLExceptionConverter()</c>), so that a dialect
    /// with a converter of its own keeps it. NHibernate calls this right after creating the converter.
    /// </summary>
    /// <param name="properties">The session factory's settings.</param>
    public void Configure(IDictionary<string, string> properties)
    {
        if (properties is null || !properties.ContainsKey(global::NHibernate.Cfg.Environment.Dialect))
            return;
        var dialectConverter = global::NHibernate.Dialect.Dialect.GetDialect(properties).BuildSQLExceptionConverter();
        if (dialectConverter is null || dialectConverter is KeepAliveSqlExceptionConverter)
            return;
        (dialectConverter as IConfigurable)?.Configure(properties);
        _inner = dialectConverter;
    }

    /// <summary>Reports the error to the pool of the connection that met it, then converts it as the dialect does.</summary>
    /// <param name="adoExceptionContextInfo">The error and its context.</param>
    /// <returns>The dialect's conversion of the error.</returns>
    public Exception Convert(AdoExceptionContextInfo adoExceptionContextInfo)
    {
        if (adoExceptionContextInfo is null)
            throw new ArgumentNullException(nameof(adoExceptionContextInfo));
        HeldConnectionGuard.ReportCurrent(adoExceptionContextInfo.SqlException);
        return _inner.Convert(adoExceptionContextInfo);
    }
}
