using System;
using System.Data;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive;

/// <summary>A transaction begun through a <see cref="KeepAliveConnection"/>: the driver's own, with the handle as its connection.</summary>
public sealed class KeepAliveTransaction : DbTransaction
{
    private readonly KeepAliveConnection _handle;

    internal KeepAliveTransaction(KeepAliveConnection handle, DbTransaction inner)
    {
        _handle = handle;
        InnerTransaction = inner;
    }

    /// <summary>The driver's own transaction object.</summary>
    public DbTransaction InnerTransaction { get; }

    /// <inheritdoc />
    public override IsolationLevel IsolationLevel => InnerTransaction.IsolationLevel;

    /// <inheritdoc />
    /// <remarks>The handle while the transaction is open; null once it committed or rolled back, as the drivers do.</remarks>
    protected override DbConnection? DbConnection => InnerTransaction.Connection is null ? null : _handle;

    /// <inheritdoc />
    public override void Commit() => InnerTransaction.Commit();

    /// <inheritdoc />
    public override void Rollback() => InnerTransaction.Rollback();

#if NET
    /// <inheritdoc />
    public override Task CommitAsync(CancellationToken cancellationToken = default) => InnerTransaction.CommitAsync(cancellationToken);

    /// <inheritdoc />
    public override Task RollbackAsync(CancellationToken cancellationToken = default) => InnerTransaction.RollbackAsync(cancellationToken);

    /// <inheritdoc />
    public override bool SupportsSavepoints => InnerTransaction.SupportsSavepoints;

    /// <inheritdoc />
    public override void Save(string savepointName) => InnerTransaction.Save(savepointName);

    /// <inheritdoc />
    public override void Rollback(string savepointName) => InnerTransaction.Rollback(savepointName);

    /// <inheritdoc />
    public override void Release(string savepointName) => InnerTransaction.Release(savepointName);

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        await InnerTransaction.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
#endif

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            InnerTransaction.Dispose();
        base.Dispose(disposing);
    }
}
