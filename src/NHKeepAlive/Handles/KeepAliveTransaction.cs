using System;
using System.Data;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive;

/// <summary>
/// A transaction begun through a <see cref="KeepAliveConnection"/>: the driver's own, with the handle as its
/// connection. It belongs to the loan it was begun in: once the handle has given that connection back, every
/// use throws <see cref="ObjectDisposedException"/> and <c>Dispose</c> does nothing, so that a late
/// <c>Commit</c>, <c>Rollback</c> or <c>Dispose</c> can never end the next caller's transaction on that session
/// (MySql.Data's transaction object does not know that the pool rolled it back on return).
/// </summary>
public sealed class KeepAliveTransaction : DbTransaction
{
    private readonly KeepAliveConnection _handle;
    private readonly PooledConnection _pooled;
    private readonly int _leaseId;

    internal KeepAliveTransaction(KeepAliveConnection handle, DbTransaction inner)
    {
        _handle = handle;
        _pooled = handle.Pooled!;
        _leaseId = handle.LeaseId;
        InnerTransaction = inner;
    }

    /// <summary>Whether the handle still holds the loan this transaction was begun in.</summary>
    private bool OnItsLoan => ReferenceEquals(_handle.Pooled, _pooled) && _handle.LeaseId == _leaseId;

    /// <summary>The driver's transaction, if the handle still holds the loan it was begun in.</summary>
    private DbTransaction Live => OnItsLoan ? InnerTransaction : throw _handle.NotOpen();

    /// <summary>The driver's own transaction object.</summary>
    public DbTransaction InnerTransaction { get; }

    /// <inheritdoc />
    public override IsolationLevel IsolationLevel => Live.IsolationLevel;

    /// <inheritdoc />
    /// <remarks>The handle while the transaction is open; null once it committed or rolled back, as the drivers do.</remarks>
    protected override DbConnection? DbConnection => OnItsLoan && InnerTransaction.Connection is not null ? _handle : null;

    /// <inheritdoc />
    public override void Commit() => Live.Commit();

    /// <inheritdoc />
    public override void Rollback() => Live.Rollback();

#if NET
    /// <inheritdoc />
    public override Task CommitAsync(CancellationToken cancellationToken = default) => Live.CommitAsync(cancellationToken);

    /// <inheritdoc />
    public override Task RollbackAsync(CancellationToken cancellationToken = default) => Live.RollbackAsync(cancellationToken);

    /// <inheritdoc />
    public override bool SupportsSavepoints => InnerTransaction.SupportsSavepoints;

    /// <inheritdoc />
    public override void Save(string savepointName) => Live.Save(savepointName);

    /// <inheritdoc />
    public override void Rollback(string savepointName) => Live.Rollback(savepointName);

    /// <inheritdoc />
    public override void Release(string savepointName) => Live.Release(savepointName);

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        if (OnItsLoan)
            await InnerTransaction.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
#endif

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && OnItsLoan)
            InnerTransaction.Dispose();
        base.Dispose(disposing);
    }
}
