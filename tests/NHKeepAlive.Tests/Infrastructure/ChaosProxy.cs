using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>
/// A TCP proxy on loopback between the pool and the test server, that a test can make misbehave the
/// way networks do: pass through; reset every flow; blackhole (sockets stay open, bytes vanish, as a
/// NAT or firewall that dropped its state); add latency; cut flows idle longer than N (a NAT or load
/// balancer idle timeout, silently or with a reset); refuse new flows for a while. Only ever
/// connects to 127.0.0.1, and every loop in it ends when the proxy is disposed.
/// </summary>
internal sealed class ChaosProxy : IDisposable
{
    private readonly TcpListener _listener;
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Flow, byte> _flows = new();
    private readonly Task _acceptLoop;
    private readonly Task _idleLoop;
    private volatile bool _blackholeNew;
    private volatile bool _refuseNew;
    private long _latencyTicks;
    private long _idleCutTicks;
    private volatile bool _idleCutSilently;
    private int _refused;

    public ChaosProxy(int upstreamPort)
    {
        _upstreamPort = upstreamPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
        _idleLoop = Task.Run(IdleLoopAsync);
    }

    /// <summary>Flows refused while <see cref="RefuseNewFlows"/> was on.</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>Delays every chunk forwarded by this much (zero: none).</summary>
    public TimeSpan Latency
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks));
        set => Interlocked.Exchange(ref _latencyTicks, value.Ticks);
    }

    /// <summary>
    /// Cuts every flow that has carried nothing for <paramref name="idle"/>: silently (it becomes a
    /// blackhole, as a NAT that forgot it) or with a reset to both ends (as some load balancers do).
    /// Zero turns it off.
    /// </summary>
    public void CutIdleFlowsAfter(TimeSpan idle, bool silently)
    {
        _idleCutSilently = silently;
        Interlocked.Exchange(ref _idleCutTicks, idle.Ticks);
    }

    /// <summary>New flows are reset at once (the client sees its connect fail) until turned off.</summary>
    public void RefuseNewFlows(bool refuse) => _refuseNew = refuse;

    public int Port { get; }

    public int OpenFlows => _flows.Count;

    /// <summary>Every flow open now stops forwarding in both directions; new flows pass.</summary>
    public void BlackholeExistingFlows()
    {
        foreach (var flow in _flows.Keys)
            flow.Blackholed = true;
    }

    /// <summary>Every flow, open now or opened later, stops forwarding (until <see cref="Heal"/>).</summary>
    public void BlackholeEverything()
    {
        _blackholeNew = true;
        BlackholeExistingFlows();
    }

    /// <summary>New flows pass again (blackholed ones stay dead, as their state is lost).</summary>
    public void Heal() => _blackholeNew = false;

    /// <summary>Resets every open flow (RST to both ends).</summary>
    public void ResetAll()
    {
        foreach (var flow in _flows.Keys.ToList())
            flow.Reset();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            if (_refuseNew)
            {
                Interlocked.Increment(ref _refused);
                Close(client, reset: true);
                continue;
            }

            var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await upstream.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _upstreamPort), _stop.Token);
            }
            catch (Exception)
            {
                Close(client, reset: true);
                upstream.Dispose();
                continue;
            }

            var flow = new Flow(this, client, upstream) { Blackholed = _blackholeNew };
            _flows[flow] = 0;
            _ = flow.RunAsync(_stop.Token).ContinueWith(_ => _flows.TryRemove(flow, out byte _), TaskScheduler.Default);
        }
    }

    private async Task IdleLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(50, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var limit = Interlocked.Read(ref _idleCutTicks);
            if (limit <= 0)
                continue;
            var now = Environment.TickCount64;
            foreach (var flow in _flows.Keys)
            {
                if (flow.Blackholed || now - flow.LastActivity < TimeSpan.FromTicks(limit).TotalMilliseconds)
                    continue;
                if (_idleCutSilently)
                    flow.Blackholed = true;
                else
                    flow.Reset();
            }
        }
    }

    private static void Close(Socket socket, bool reset)
    {
        try
        {
            if (reset)
                socket.LingerState = new LingerOption(true, 0);
            socket.Dispose();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var flow in _flows.Keys.ToList())
            flow.Reset();
        Task.WaitAll([_acceptLoop, _idleLoop], TimeSpan.FromSeconds(5));
    }

    private sealed class Flow(ChaosProxy proxy, Socket client, Socket upstream)
    {
        public volatile bool Blackholed;
        private long _lastActivity = Environment.TickCount64;

        public long LastActivity => Interlocked.Read(ref _lastActivity);

        public async Task RunAsync(CancellationToken stop)
        {
            var outbound = PumpAsync(client, upstream, stop);
            var inbound = PumpAsync(upstream, client, stop);
            await Task.WhenAny(outbound, inbound);

            // A forgotten flow carries nothing, not even the other end's close: the client learns
            // nothing until it gives up by itself.
            if (Blackholed)
                await Task.WhenAll(outbound, inbound);
            Reset();
        }

        public void Reset()
        {
            Close(client, reset: true);
            Close(upstream, reset: true);
        }

        private async Task PumpAsync(Socket from, Socket to, CancellationToken stop)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    var read = await from.ReceiveAsync(buffer, SocketFlags.None, stop);
                    if (read == 0)
                        return;
                    if (Blackholed)
                        continue; // Bytes vanish; neither end hears anything.
                    Interlocked.Exchange(ref _lastActivity, Environment.TickCount64);
                    var latency = proxy.Latency;
                    if (latency > TimeSpan.Zero)
                        await Task.Delay(latency, stop);
                    await to.SendAsync(new ArraySegment<byte>(buffer, 0, read), SocketFlags.None, stop);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
            }
        }
    }
}
