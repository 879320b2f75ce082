using System.Threading;

namespace NHKeepAlive.Drivers;

/// <summary>
/// What the statements of one connection may have left on its session since the record was last
/// taken: a change (<see cref="StatementEffects.Session"/>), or a <c>SET TRANSACTION</c> characteristic
/// that no transaction has taken yet. Transactions themselves are left to the server's status flags.
/// Written by the connection's own commands and read at its return; a lock-free record of two flags.
/// </summary>
internal sealed class StatementWatch
{
    private const int Changed = 1;
    private const int NextTransaction = 2;
    private int _state;

    /// <summary>Records what <paramref name="sql"/> may leave behind (<see cref="StatementClassifier.Classify"/>).</summary>
    public void Saw(string? sql)
    {
        var effects = StatementClassifier.Classify(sql);
        if (effects == StatementEffects.None || effects == StatementEffects.Transaction)
            return;
        int state, next;
        do
        {
            state = Volatile.Read(ref _state);
            next = state;
            if ((effects & StatementEffects.Session) != 0)
                next |= Changed;
            if ((effects & StatementEffects.BeginsTransaction) != 0)
                next &= ~NextTransaction; // the transaction took the characteristic
            if ((effects & StatementEffects.NextTransaction) != 0)
                next |= NextTransaction;
        }
        while (next != state && Interlocked.CompareExchange(ref _state, next, state) != state);
    }

    /// <summary>Whether the session may have changed since the last call, which clears the record.</summary>
    public bool TakeChanged() => Interlocked.Exchange(ref _state, 0) != 0;

    /// <summary>Forgets what was seen (after a reset, and what the pool itself ran to restore the session).</summary>
    public void Clear() => Volatile.Write(ref _state, 0);
}
