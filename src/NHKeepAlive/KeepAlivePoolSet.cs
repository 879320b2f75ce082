using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Data.Common;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive;

/// <summary>
/// One <see cref="KeepAlivePool"/> per connection string, for applications with many databases (a database per
/// tenant): each pool is built on its connection string's first use, exactly once however many threads ask at
/// the same moment, from a template of options; a pool with nothing on loan for <see cref="RetireAfter"/> is
/// closed and forgotten (built again on its next use), so that a quiet tenant costs no connection. Every pool's
/// housekeeping shares the process's few housekeeping threads. Thread-safe.
/// </summary>
public sealed class KeepAlivePoolSet : IDisposable
{
    private static readonly TimeSpan s_maxCheckPeriod = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_minCheckPeriod = TimeSpan.FromMilliseconds(100);

    private readonly KeepAliveOptions _template;
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly HousekeepingScheduler.Registration? _retirement;
    private int _disposed;

    /// <summary>A set whose pools are built from <paramref name="template"/> (its connection string and pool name are replaced per pool).</summary>
    /// <param name="template">The options every pool is built from; copied now.</param>
    /// <param name="retireAfter">How long a pool may have nothing on loan before it is retired; zero (or <see cref="Timeout.InfiniteTimeSpan"/>) never retires one.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="retireAfter"/> is negative, or longer than 24 days.</exception>
    public KeepAlivePoolSet(KeepAliveOptions template, TimeSpan retireAfter)
    {
        if (template is null)
            throw new ArgumentNullException(nameof(template));
        if (retireAfter == TimeSpan.Zero)
            retireAfter = Timeout.InfiniteTimeSpan;
        if (retireAfter != Timeout.InfiniteTimeSpan && (retireAfter < TimeSpan.Zero || retireAfter > PoolSettings.MaxPeriod))
            throw new ArgumentOutOfRangeException(nameof(retireAfter), retireAfter, $"The time after which a quiet pool is retired must be zero (never) or more, and at most {PoolSettings.Show(PoolSettings.MaxPeriod)}.");
        _template = template.Clone();
        RetireAfter = retireAfter;
        if (retireAfter != Timeout.InfiniteTimeSpan)
            _retirement = HousekeepingScheduler.Shared.Register(_ => RetireQuiet(), CheckPeriod);
    }

    /// <summary>How long a pool may have nothing on loan before it is retired (the NHibernate provider takes <see cref="KeepAliveOptions.TenantPoolRetireAfter"/>).</summary>
    public TimeSpan RetireAfter { get; }

    /// <summary>The pools alive now.</summary>
    public int Count => _entries.Count;

    private TimeSpan CheckPeriod
    {
        get
        {
            var period = TimeSpan.FromTicks(RetireAfter.Ticks / 4);
            return period > s_maxCheckPeriod ? s_maxCheckPeriod : period < s_minCheckPeriod ? s_minCheckPeriod : period;
        }
    }

    /// <summary>The pool for <paramref name="connectionString"/>, built on first use. It may be retired once nothing is on loan from it for <see cref="RetireAfter"/>: rent through <see cref="Rent"/> rather than keep it.</summary>
    /// <param name="connectionString">The connection string.</param>
    /// <returns>The pool.</returns>
    public KeepAlivePool PoolFor(string connectionString) => EntryFor(connectionString).Pool;

    /// <summary>Takes a connection from the pool for <paramref name="connectionString"/> (built on first use).</summary>
    /// <param name="connectionString">The connection string.</param>
    /// <returns>An open <see cref="KeepAliveConnection"/>; dispose it (or <see cref="KeepAlivePool.Return"/> it to <see cref="KeepAlivePool.OwnerOf"/>) to give it back.</returns>
    public DbConnection Rent(string connectionString)
    {
        while (true)
        {
            var entry = EntryFor(connectionString);
            if (!entry.Enter())
                continue; // Retired this instant: the next look builds it again.
            try
            {
                return entry.Pool.Rent();
            }
            finally
            {
                entry.Leave();
            }
        }
    }

    /// <summary>Takes a connection from the pool for <paramref name="connectionString"/> without blocking a thread.</summary>
    /// <param name="connectionString">The connection string.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>An open <see cref="KeepAliveConnection"/>.</returns>
    public async Task<DbConnection> RentAsync(string connectionString, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var entry = EntryFor(connectionString);
            if (!entry.Enter())
                continue;
            try
            {
                return await entry.Pool.RentAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                entry.Leave();
            }
        }
    }

    /// <summary>Disposes every pool.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _retirement?.Unregister(TimeSpan.FromSeconds(5), fromRun: false);
        foreach (var entry in _entries.Values)
        {
            if (entry.IsBuilt)
                entry.Pool.Dispose();
        }

        _entries.Clear();
    }

    private Entry EntryFor(string connectionString)
    {
        if (connectionString is null)
            throw new ArgumentNullException(nameof(connectionString));
#pragma warning disable CA1513 // netstandard2.0 has no ObjectDisposedException.ThrowIf.
        if (Volatile.Read(ref _disposed) != 0)
            throw new ObjectDisposedException(nameof(KeepAlivePoolSet));
#pragma warning restore CA1513

        // GetOrAdd's factory may run more than once under contention: it builds only an Entry, whose pool is
        // built once, lazily, by the entry that won.
        return _entries.GetOrAdd(connectionString, cs => new Entry(this, cs));
    }

    private KeepAlivePool Build(string connectionString)
    {
        var options = _template.Clone();
        options.ConnectionString = connectionString;
        options.PoolName = null;
        options.SharesServerFacts = true;
        return new KeepAlivePool(options);
    }

    /// <summary>Retires the pools that had nothing on loan for <see cref="RetireAfter"/>; on the housekeeping scheduler.</summary>
    private void RetireQuiet()
    {
        try
        {
            foreach (var pair in _entries)
            {
                var entry = pair.Value;
                if (!entry.IsBuilt || !entry.QuietFor(RetireAfter) || !entry.TryRetire())
                    continue;
                ((ICollection<KeyValuePair<string, Entry>>)_entries).Remove(pair);
                entry.Pool.Dispose();
            }
        }
        finally
        {
            _retirement?.DueIn(CheckPeriod); // Even after a failure: retirement must not stop for good.
        }
    }

    /// <summary>One connection string's pool, and who is renting from it now.</summary>
    private sealed class Entry(KeepAlivePoolSet set, string connectionString)
    {
        private readonly Lazy<KeepAlivePool> _pool = new(() => set.Build(connectionString), LazyThreadSafetyMode.ExecutionAndPublication);

        // Callers inside Rent now; -1 once retired (no caller may enter any more).
        private int _renters;
        private long _lastUsed = Stopwatch.GetTimestamp();

        public KeepAlivePool Pool => _pool.Value;

        public bool IsBuilt => _pool.IsValueCreated;

        public bool Enter()
        {
            while (true)
            {
                var renters = Volatile.Read(ref _renters);
                if (renters < 0)
                    return false;
                if (Interlocked.CompareExchange(ref _renters, renters + 1, renters) == renters)
                    return true;
            }
        }

        public void Leave()
        {
            Volatile.Write(ref _lastUsed, Stopwatch.GetTimestamp());
            Interlocked.Decrement(ref _renters);
        }

        /// <summary>Whether nothing was on loan, nobody was renting and nobody waited, for <paramref name="quiet"/>.</summary>
        public bool QuietFor(TimeSpan quiet)
        {
            var statistics = Pool.GetStatistics();
            if (statistics.Active > 0 || statistics.Pending > 0 || statistics.Opening > 0 || Volatile.Read(ref _renters) != 0)
            {
                Volatile.Write(ref _lastUsed, Stopwatch.GetTimestamp());
                return false;
            }

            return Stopwatch.GetTimestamp() - Volatile.Read(ref _lastUsed) >= (long)(quiet.TotalSeconds * Stopwatch.Frequency);
        }

        /// <summary>Closes the entry to new renters, if nobody is renting now.</summary>
        public bool TryRetire() => Interlocked.CompareExchange(ref _renters, -1, 0) == 0;
    }
}
