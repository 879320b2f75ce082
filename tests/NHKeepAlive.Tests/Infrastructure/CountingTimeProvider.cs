using System;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>The system clock, counting the timers made from it that are still alive.</summary>
internal sealed class CountingTimeProvider : TimeProvider
{
    private int _live;

    public int LiveTimers => Volatile.Read(ref _live);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        Interlocked.Increment(ref _live);
        return new Counted(this, System.CreateTimer(callback, state, dueTime, period));
    }

    private sealed class Counted(CountingTimeProvider owner, ITimer inner) : ITimer
    {
        private int _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
                Interlocked.Decrement(ref owner._live);
            inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return default;
        }
    }
}
