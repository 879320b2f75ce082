using System;
using System.Threading;
using System.Threading.Tasks;
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
    /// <summary>
    /// How long after the transaction completed the pool waits for its own notification before it gives up on
    /// it and closes the connection (never reuses it: what the driver left on the session is unknown). Mono's
    /// System.Transactions, with MySqlConnector's XA enlistment, can complete a transaction without telling every
    /// volatile enlistment; a connection must not stay out of the pool for good.
    /// </summary>
    private static readonly TimeSpan s_outcomeGrace = TimeSpan.FromSeconds(5);

    private readonly object _lock = new();
    private readonly Action<Exception?, bool> _takeBack;
    private bool _completed;
    private bool _returned;
    private bool _transactionEnded;
    private Exception? _failure;

    /// <param name="transaction">The transaction the driver has just enlisted the connection in.</param>
    /// <param name="takeBack">Takes the connection back: with the failure met on it, and whether to close it rather than reuse it.</param>
    public TransactionEnlistment(Transaction transaction, Action<Exception?, bool> takeBack)
    {
        Transaction = transaction;
        _takeBack = takeBack;
        transaction.EnlistVolatile(this, EnlistmentOptions.None);
        transaction.TransactionCompleted += (_, _) => Ended();
    }

    public Transaction Transaction { get; }

    /// <summary>
    /// The connection was given back: true when the transaction is still going (it is taken back when the outcome
    /// reaches this enlistment), false when that has happened already (take it back now).
    /// </summary>
    public bool GivenBack(Exception? failure)
    {
        bool ended;
        lock (_lock)
        {
            if (_completed)
                return false;
            _returned = true;
            _failure = failure;
            ended = _transactionEnded;
        }

        if (ended)
            StartGrace();
        return true;
    }

    /// <summary>
    /// A handle opened inside this transaction while it is still going takes the connection given back to it
    /// (as the drivers' own pools give a transaction's connection to the next open in it): true when it may, and
    /// then the connection waits for no outcome until it is given back again. False once the transaction ended,
    /// when nothing was given back, or when the caller met an error on it.
    /// </summary>
    public bool TryReclaim()
    {
        lock (_lock)
        {
            if (_completed || _transactionEnded || !_returned || _failure is not null)
                return false;
            _returned = false;
            return true;
        }
    }

    /// <summary>The transaction completed: a connection given back and still waiting for this enlistment's notification gets the grace period, no more.</summary>
    private void Ended()
    {
        bool waiting;
        lock (_lock)
        {
            _transactionEnded = true;
            waiting = _returned && !_completed;
        }

        if (waiting)
            StartGrace();
    }

    /// <summary>Only for a connection that waits on a completed transaction: the common path starts no timer.</summary>
    private void StartGrace() =>
        _ = Task.Delay(s_outcomeGrace).ContinueWith(static (_, s) => ((TransactionEnlistment)s!).Complete(late: true), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    public void Prepare(PreparingEnlistment preparingEnlistment) => preparingEnlistment.Prepared();

    public void Commit(Enlistment enlistment)
    {
        enlistment.Done();
        Complete(late: false);
    }

    public void Rollback(Enlistment enlistment)
    {
        enlistment.Done();
        Complete(late: false);
    }

    public void InDoubt(Enlistment enlistment)
    {
        enlistment.Done();
        Complete(late: false);
    }

    /// <summary>The outcome reached this enlistment (or, <paramref name="late"/>, never did): a connection given back is taken back, once.</summary>
    private void Complete(bool late)
    {
        bool takeBack;
        Exception? failure;
        lock (_lock)
        {
            if (_completed)
                return;
            _completed = true;
            takeBack = _returned;
            failure = _failure;
        }

        if (takeBack)
            _takeBack(failure, late);
    }
}
