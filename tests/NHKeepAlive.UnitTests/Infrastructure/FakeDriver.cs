using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Data;
using System.Data.Common;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Moq;
using NHKeepAlive.Drivers;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>A connection with no server behind it: Open makes it Open, Close makes it Closed.</summary>
internal sealed class FakeConnection : DbConnection
{
    private ConnectionState _state = ConnectionState.Closed;

    public bool IsDisposed { get; private set; }

    public int Number { get; init; }

#pragma warning disable CS8765 // The base setter accepts null; so does this one, in effect.
    public override string ConnectionString { get; set; } = string.Empty;
#pragma warning restore CS8765

    public override string Database => "db";

    public override string DataSource => "fake";

    public override string ServerVersion => "0";

    public override ConnectionState State => _state;

    public void Break() => _state = ConnectionState.Closed;

    /// <summary>Awaited by <see cref="OpenAsync"/> before it opens: a slow connect.</summary>
    public Func<Task>? BeforeOpen { get; init; }

    public override async Task OpenAsync(CancellationToken cancellationToken)
    {
        if (BeforeOpen is { } before)
            await before().ConfigureAwait(false);
        Open();
    }

    public override void Open()
    {
        // As the drivers do (Persist Security Info=false): the password is gone once the connection is open.
        ConnectionString = System.Text.RegularExpressions.Regex.Replace(ConnectionString, ";?Password=[^;]*", string.Empty);
        _state = ConnectionState.Open;
    }

    public override void Close() => _state = ConnectionState.Closed;

    public override void ChangeDatabase(string databaseName)
    {
    }

    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel) => throw new NotSupportedException();

    protected override DbCommand CreateDbCommand() => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        IsDisposed = true;
        _state = ConnectionState.Closed;
        base.Dispose(disposing);
    }
}

/// <summary>A pool on a mocked driver and a fake clock: what the pool decides, without a server.</summary>
internal sealed class FakePoolFixture : IDisposable
{
    private int _opened;

    public FakePoolFixture(Action<KeepAliveOptions>? configure = null, TimeSpan? serverWaitTimeout = null)
    {
        Driver = new Mock<DriverAdapter>(MockBehavior.Strict);
        Driver.SetupGet(d => d.Name).Returns("Fake");
        Driver.SetupGet(d => d.Kind).Returns(MySqlDriver.MySqlData);
        // What the pool records of the driver from its first connection (DriverCapabilities).
        Driver.SetupGet(d => d.Version).Returns("0-fake");
        Driver.SetupGet(d => d.KnowsTransactionState).Returns(true);
        Driver.SetupGet(d => d.KeepsStatusFlags).Returns(false);
        Driver.SetupGet(d => d.CanResetSession).Returns(true);
        Driver.Setup(d => d.PrepareConnectionString(It.IsAny<string>())).Returns(new PreparedConnectionString("Server=fake;Password=secret", "Server=fake", "Server=fake", "fake|3306|", autoEnlist: true, "secret", "fake"));
        // Not plain: a fake connection's socket is no MySQL server.
        Driver.Setup(d => d.FindSocket(It.IsAny<DbConnection>())).Returns((DbConnection c) => SocketOf?.Invoke(c) ?? (Sockets.TryGetValue(c, out var socket) ? socket : null, false));
        Driver.Setup(d => d.CreateConnection(It.IsAny<string>())).Returns(() =>
        {
            var connection = new FakeConnection { Number = Interlocked.Increment(ref _opened), BeforeOpen = BeforeOpen };
            Connections.Add(connection);
            return connection;
        });
        Driver.Setup(d => d.PingAsync(It.IsAny<DbConnection>(), It.IsAny<bool>(), It.IsAny<CancellationToken>()))
            .Returns((DbConnection c, bool _, CancellationToken _) =>
            {
                Pings.Enqueue(c);
                return new ValueTask<bool>(!Dead.Contains(c));
            });
        Driver.Setup(d => d.ReadWaitTimeoutAsync(It.IsAny<DbConnection>(), It.IsAny<TimeSpan>(), It.IsAny<bool>(), It.IsAny<CancellationToken>()))
            .Returns(new ValueTask<TimeSpan?>(serverWaitTimeout));
        Driver.Setup(d => d.IsInTransaction(It.IsAny<DbConnection>())).Returns(false);
        Driver.Setup(d => d.SessionMayHaveChanged(It.IsAny<DbConnection>())).Returns(false);
        Driver.Setup(d => d.PrepareSession(It.IsAny<DbConnection>(), It.IsAny<SessionFacts?>())).Returns((SessionSetup?)null);
        Driver.Setup(d => d.ForgetSession(It.IsAny<DbConnection>()));
        Driver.Setup(d => d.CheckNodeAsync(It.IsAny<DbConnection>(), It.IsAny<bool>(), It.IsAny<TimeSpan>(), It.IsAny<bool>()))
            .Returns((DbConnection c, bool _, TimeSpan _, bool _) => new ValueTask<string?>(Unfit.TryGetValue(c, out var why) ? why : null));
        Driver.Setup(d => d.ResetSession(It.IsAny<DbConnection>(), It.IsAny<string?>())).Returns((DbConnection c, string? _) =>
        {
            Resets.Enqueue(c);
            return true;
        });
        Driver.Setup(d => d.ServerThreadId(It.IsAny<DbConnection>())).Returns((int?)null);
        Driver.Setup(d => d.Abort(It.IsAny<DbConnection>())).Returns(true);

        Options = new KeepAliveOptions
        {
            ConnectionString = "Server=fake",
            TimeProvider = Time,
            LoggerFactory = Log,
            ShutdownGracePeriod = TimeSpan.Zero,
        };
        configure?.Invoke(Options);
        Pool = new KeepAlivePool(PoolSettings.Create(Options, Driver.Object), new Random(1234));
    }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 25, 0, 0, 0, TimeSpan.Zero));

    public CapturingLoggerFactory Log { get; } = new();

    public Mock<DriverAdapter> Driver { get; }

    public KeepAliveOptions Options { get; }

    public KeepAlivePool Pool { get; }

    public ConcurrentBag<FakeConnection> Connections { get; } = [];

    public ConcurrentQueue<DbConnection> Pings { get; } = new();

    /// <summary>What connections opened from now on await before they open (async opens only).</summary>
    public Func<Task>? BeforeOpen { get; set; }

    /// <summary>Sockets the fake driver reports under connections it opens (set before the connection opens).</summary>
    public ConcurrentDictionary<DbConnection, System.Net.Sockets.Socket> Sockets { get; } = new();

    /// <summary>When set, the socket (and whether its protocol is plain) the fake driver reports under each connection as it opens.</summary>
    public Func<DbConnection, (System.Net.Sockets.Socket? Socket, bool Plain)>? SocketOf { get; set; }

    /// <summary>Connections whose session the pool reset, in order.</summary>
    public ConcurrentQueue<DbConnection> Resets { get; } = new();

    /// <summary>Connections whose node health query says unfit, and why.</summary>
    public ConcurrentDictionary<DbConnection, string> Unfit { get; } = new();

    /// <summary>Connections whose ping fails.</summary>
    public HashSet<DbConnection> Dead { get; } = [];

    /// <summary>Advances the fake clock and waits for the housekeeping run the timer started, if any.</summary>
    public void Advance(TimeSpan by)
    {
        Time.Advance(by);
        if (!Pool.HousekeepingTask.Wait(TimeSpan.FromSeconds(10)))
            throw new TimeoutException("housekeeping did not finish");
    }

    /// <summary>Returns connections in order and lets them idle from now on.</summary>
    public List<DbConnection> RentMany(int count)
    {
        var list = new List<DbConnection>();
        for (var i = 0; i < count; i++)
            list.Add(Pool.Rent());
        return list;
    }

    public void Dispose() => Pool.Dispose();
}
