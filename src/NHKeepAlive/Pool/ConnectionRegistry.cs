using System;
using System.Collections.Generic;
using System.Threading;

namespace NHKeepAlive;

/// <summary>
/// Owns every physical connection of one pool and its state (the role of HikariCP's
/// <c>ConcurrentBag</c>): the idle list, the set of live connections, how many are in each
/// <see cref="PooledConnectionState"/>, and the slots (one per connection out of the idle list, so that
/// idle + out never exceeds the pool's maximum). Every transition names the state it expects and fails
/// loudly (<see cref="InvalidOperationException"/>) when the connection is in another: a connection is
/// never moved by two parties at once. The pool holds the policy (when to open, check, retire, close);
/// this class holds only the bookkeeping.
/// </summary>
internal sealed class ConnectionRegistry : IDisposable
{
    private readonly object _lock = new();

    // Idle connections, most recently returned last (checkout takes from the end: LIFO keeps a few
    // connections hot and lets the rest reach the idle timeout).
    private readonly List<PooledConnection> _idle = [];
    private readonly HashSet<PooledConnection> _all = [];
    private readonly int[] _inState = new int[6];
    private readonly string _poolName;
    private readonly Func<bool> _refuses;

    /// <param name="poolName">The pool's name, for errors.</param>
    /// <param name="maxPoolSize">How many slots there are.</param>
    /// <param name="refuses">Whether the pool refuses connections back into use (it is disposed); read under the lock of each move that puts one there.</param>
    public ConnectionRegistry(string poolName, int maxPoolSize, Func<bool> refuses)
    {
        _poolName = poolName;
        _refuses = refuses;
        Slots = new SemaphoreSlim(maxPoolSize, maxPoolSize);
    }

    /// <summary>One slot per connection that is out of the idle list (on loan, being opened, checked or closed).</summary>
    public SemaphoreSlim Slots { get; }

    /// <summary>Every connection that is not closed yet.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
                return _all.Count;
        }
    }

    /// <summary>How many connections are in <paramref name="state"/> now.</summary>
    public int InState(PooledConnectionState state)
    {
        lock (_lock)
            return _inState[(int)state];
    }

    /// <summary>The counts of each state, read together.</summary>
    public (int Leased, int Idle, int Opening, int Checking) Counts()
    {
        lock (_lock)
        {
            return (_inState[(int)PooledConnectionState.Leased], _inState[(int)PooledConnectionState.Idle],
                _inState[(int)PooledConnectionState.Opening], _inState[(int)PooledConnectionState.Checking]);
        }
    }

    /// <summary>Accounts for a connection about to be opened (state <see cref="PooledConnectionState.Opening"/>).</summary>
    public void Add(PooledConnection pooled)
    {
        lock (_lock)
        {
            Expect(pooled, PooledConnectionState.Opening);
            if (!_all.Add(pooled))
                throw Wrong(pooled, "added twice");
            _inState[(int)PooledConnectionState.Opening]++;
        }
    }

    /// <summary>Moves <paramref name="pooled"/> from <paramref name="from"/> to <paramref name="to"/>; throws if it is in another state.</summary>
    public void Move(PooledConnection pooled, PooledConnectionState from, PooledConnectionState to)
    {
        lock (_lock)
        {
            Expect(pooled, from);
            Set(pooled, to);
        }
    }

    /// <summary>
    /// Moves a connection on loan under <paramref name="leaseId"/> to <paramref name="to"/>; false when it
    /// is no longer on that loan (returned, recovered or closed meanwhile).
    /// </summary>
    public bool TryEndLease(PooledConnection pooled, int leaseId, PooledConnectionState to)
    {
        lock (_lock)
        {
            if (pooled.State != PooledConnectionState.Leased || pooled.LeaseId != leaseId)
                return false;
            Set(pooled, to);
            return true;
        }
    }

    /// <summary>Takes the newest idle connection out of the idle list for a check (Idle to Checking), if there is one.</summary>
    public PooledConnection? TakeNewestIdle()
    {
        lock (_lock)
        {
            if (_idle.Count == 0)
                return null;
            var pooled = _idle[_idle.Count - 1];
            _idle.RemoveAt(_idle.Count - 1);
            Move(pooled, PooledConnectionState.Idle, PooledConnectionState.Checking);
            return pooled;
        }
    }

    /// <summary>Takes one idle connection out for a check (Idle to Checking); false when a caller took it meanwhile.</summary>
    public bool TryTakeIdle(PooledConnection pooled)
    {
        lock (_lock)
        {
            if (pooled.State != PooledConnectionState.Idle)
                return false;
            _idle.Remove(pooled);
            Set(pooled, PooledConnectionState.Checking);
            return true;
        }
    }

    /// <summary>Takes every idle connection that <paramref name="match"/> accepts (oldest first) out for a check, up to <paramref name="limit"/>.</summary>
    public List<PooledConnection> TakeIdle(Func<PooledConnection, int, bool> match, int limit = int.MaxValue)
    {
        lock (_lock)
        {
            var taken = new List<PooledConnection>();
            for (var i = 0; i < _idle.Count && taken.Count < limit; i++)
            {
                var pooled = _idle[i];
                if (!match(pooled, taken.Count))
                    continue;
                _idle.RemoveAt(i--);
                Set(pooled, PooledConnectionState.Checking);
                taken.Add(pooled);
            }

            return taken;
        }
    }

    /// <summary>The idle connections now (a copy), oldest first.</summary>
    public List<PooledConnection> IdleSnapshot()
    {
        lock (_lock)
            return [.. _idle];
    }

    /// <summary>The connections on loan now (a copy).</summary>
    public List<PooledConnection> LeasedSnapshot()
    {
        lock (_lock)
        {
            var leased = new List<PooledConnection>();
            foreach (var pooled in _all)
            {
                if (pooled.State == PooledConnectionState.Leased)
                    leased.Add(pooled);
            }

            return leased;
        }
    }

    /// <summary>
    /// Puts a connection that was opened or checked into the idle list (Opening or Checking to Idle), as
    /// the newest or the oldest; false, and nothing moved, when the pool refuses it (it is disposed).
    /// </summary>
    public bool ToIdle(PooledConnection pooled, bool newest)
    {
        lock (_lock)
        {
            if (_refuses())
                return false;
            Expect(pooled, PooledConnectionState.Checking, PooledConnectionState.Opening);
            Set(pooled, PooledConnectionState.Idle);
            if (newest)
                _idle.Add(pooled);
            else
                _idle.Insert(0, pooled);
            return true;
        }
    }

    /// <summary>Hands a connection that was opened or checked to a caller (Opening or Checking to Leased), under a new lease number; false when the pool refuses it.</summary>
    public bool ToLeased(PooledConnection pooled)
    {
        lock (_lock)
        {
            if (_refuses())
                return false;
            Expect(pooled, PooledConnectionState.Checking, PooledConnectionState.Opening);
            Set(pooled, PooledConnectionState.Leased);
            pooled.LeaseId++;
            return true;
        }
    }

    /// <summary>
    /// The first half of the one way out: marks a connection Closing (from any state but Idle, which must be
    /// taken out first). False when it is already closing or closed: a connection is closed exactly once.
    /// </summary>
    public bool BeginClose(PooledConnection pooled)
    {
        lock (_lock)
        {
            if (pooled.State is PooledConnectionState.Closing or PooledConnectionState.Closed)
                return false;
            Expect(pooled, PooledConnectionState.Opening, PooledConnectionState.Checking, PooledConnectionState.Leased);
            Set(pooled, PooledConnectionState.Closing);
            return true;
        }
    }

    /// <summary>The second half: forgets a connection whose driver object was disposed (Closing or Opening to Closed).</summary>
    public void Forget(PooledConnection pooled)
    {
        lock (_lock)
        {
            Expect(pooled, PooledConnectionState.Closing, PooledConnectionState.Opening);
            _all.Remove(pooled);
            Set(pooled, PooledConnectionState.Closed);
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Takes every idle connection out for closing (a clear, a shutdown).</summary>
    public List<PooledConnection> TakeAllIdle() => TakeIdle(static (_, _) => true);

    /// <summary>Waits up to <paramref name="grace"/> for every connection to be closed; returns those still live.</summary>
    public List<PooledConnection> WaitForEmpty(TimeSpan grace)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        lock (_lock)
        {
            while (_all.Count > 0 && deadline.Elapsed < grace)
                Monitor.Wait(_lock, grace - deadline.Elapsed);
            return [.. _all];
        }
    }

    public void Dispose() => Slots.Dispose();

    private void Set(PooledConnection pooled, PooledConnectionState to)
    {
        _inState[(int)pooled.State]--;
        pooled.State = to;
        _inState[(int)to]++;
    }

    private void Expect(PooledConnection pooled, PooledConnectionState expected)
    {
        if (pooled.State != expected)
            throw Wrong(pooled, $"is {pooled.State}, not {expected}");
    }

    private void Expect(PooledConnection pooled, PooledConnectionState a, PooledConnectionState b, PooledConnectionState? c = null)
    {
        var state = pooled.State;
        if (state != a && state != b && state != c)
            throw Wrong(pooled, $"is {state}, not {a} or {b}{(c is { } third ? $" or {third}" : string.Empty)}");
    }

    private InvalidOperationException Wrong(PooledConnection pooled, string what) =>
        new($"NHKeepAlive internal error: pool '{_poolName}', connection {pooled.Id} {what}. Please report this with the pool's log.");
}
