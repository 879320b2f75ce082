using System;
using System.Transactions;

namespace NHKeepAlive;

/// <summary>
/// The pool's own part in a system transaction a pooled connection is enlisted in: a volatile enlistment made
/// right after the driver's, so that System.Transactions tells it of the outcome after it has told the driver
/// (phase-two notifications go in enlistment order). A connection given back before then (NHibernate gives its
/// session's connection back from its own notification, which comes first) is taken back only when this one is
/// told: after the driver has sent its <c>XA COMMIT</c> or <c>XA ROLLBACK</c> (MySqlConnector) or committed its
/// local transaction (MySql.Data), never before.
/// </summary>
internal sealed class TransactionEnlistment : IEnlistmentNotification
{
    private readonly object _lock = new();
    private readonly Action<Exception?> _takeBack;
    private bool _completed;
    private bool _returned;
    private Exception? _failure;

    public TransactionEnlistment(Transaction transaction, Action<Exception?> takeBack)
    {
        Transaction = transaction;
        _takeBack = takeBack;
        transaction.EnlistVolatile(this, EnlistmentOptions.None);
    }

    public Transaction Transaction { get; }

    /// <summary>
    /// The connection was given back: true when the transaction is still going (it is taken back when the outcome
    /// reaches this enlistment), false when that has happened already (take it back now).
    /// </summary>
    public bool GivenBack(Exception? failure)
    {
        lock (_lock)
        {
            if (_completed)
                return false;
            _returned = true;
            _failure = failure;
            return true;
        }
    }

    public void Prepare(PreparingEnlistment preparingEnlistment) => preparingEnlistment.Prepared();

    public void Commit(Enlistment enlistment) => Complete(enlistment);

    public void Rollback(Enlistment enlistment) => Complete(enlistment);

    public void InDoubt(Enlistment enlistment) => Complete(enlistment);

    private void Complete(Enlistment enlistment)
    {
        enlistment.Done();
        bool takeBack;
        Exception? failure;
        lock (_lock)
        {
            _completed = true;
            takeBack = _returned;
            failure = _failure;
        }

        if (takeBack)
            _takeBack(failure);
    }
}
