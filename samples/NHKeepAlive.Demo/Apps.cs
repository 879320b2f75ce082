using System;
using System.Data.Common;
using MySql.Data.MySqlClient;

namespace NHKeepAlive.Demo;

/// <summary>
/// The small application the demo runs: a "pooled" request (take a connection, write a row, read it
/// back, give it back) and a "held" request, a transaction (begin, write, read, commit) on one
/// connection the application keeps for its whole life, as legacy code with a static connection or an
/// NHibernate session with release_mode=on_close does.
/// </summary>
internal interface IDemoApp : IDisposable
{
    string Name { get; }

    void PooledRequest(int id);

    void HeldRequest(int id);

    /// <summary>Starts a new long-lived connection (or session), so that each fault meets a fresh one.</summary>
    void RenewHeld();
}

internal static class Sql
{
    public static void WriteAndRead(DbConnection connection, int id, DbTransaction? transaction = null)
    {
        using (var insert = connection.CreateCommand())
        {
            insert.Transaction = transaction;
            insert.CommandText = $"INSERT INTO demo_requests (id) VALUES ({id})";
            insert.ExecuteNonQuery();
        }

        using var select = connection.CreateCommand();
        select.Transaction = transaction;
        select.CommandText = $"SELECT COUNT(*) FROM demo_requests WHERE id = {id}";
        select.ExecuteScalar();
    }

    /// <summary>A unit of work on a held connection: {BeginTransaction; write and read; Commit}.</summary>
    public static void InTransaction(DbConnection connection, int id)
    {
        using var transaction = connection.BeginTransaction();
        WriteAndRead(connection, id, transaction);
        transaction.Commit();
    }
}

/// <summary>MySql.Data with its own pool: what an application has before NHKeepAlive.</summary>
internal sealed class StockApp(string connectionString) : IDemoApp
{
    private MySqlConnection? _held;

    public string Name => "stock MySql.Data pool";

    public void PooledRequest(int id)
    {
        using var connection = new MySqlConnection(connectionString);
        connection.Open();
        Sql.WriteAndRead(connection, id);
    }

    public void HeldRequest(int id)
    {
        if (_held is null)
        {
            _held = new MySqlConnection(connectionString);
            _held.Open();
        }

        Sql.InTransaction(_held, id);
    }

    public void RenewHeld()
    {
        _held?.Dispose();
        _held = null;
    }

    public void Dispose()
    {
        _held?.Dispose();
        MySqlConnection.ClearAllPools();
    }
}

/// <summary>The same application on NHKeepAlive.</summary>
internal sealed class KeepAliveApp(string connectionString) : IDemoApp
{
    private readonly KeepAlivePool _pool = new(new KeepAliveOptions { ConnectionString = connectionString, Driver = MySqlDriver.MySqlData });
    private DbConnection? _held;

    public string Name => "NHKeepAlive";

    public void PooledRequest(int id)
    {
        using var lease = _pool.Lease();
        try
        {
            Sql.WriteAndRead(lease.Connection, id);
        }
        catch (Exception e)
        {
            lease.ReportFailure(e);
            throw;
        }
    }

    public void HeldRequest(int id)
    {
        _held ??= _pool.Rent();
        _pool.EnsureAlive(_held, inTransaction: false); // what NHKeepAlive's NHibernate adapter does before a transaction begins
        Sql.InTransaction(_held, id);
    }

    public void RenewHeld()
    {
        if (_held is not null)
            _pool.Return(_held);
        _held = null;
    }

    public void Dispose()
    {
        RenewHeld();
        _pool.Dispose();
    }
}
