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
/// way networks do: forget flows (blackhole: sockets stay open, bytes vanish, as a NAT or firewall
/// that dropped its state), or reset them. Only ever connects to 127.0.0.1.
/// </summary>
internal sealed class ChaosProxy : IDisposable
{
    private readonly TcpListener _listener;
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Flow, byte> _flows = new();
    private readonly Task _acceptLoop;
    private volatile bool _blackholeNew;

    public ChaosProxy(int upstreamPort)
    {
        _upstreamPort = upstreamPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

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

            var flow = new Flow(client, upstream) { Blackholed = _blackholeNew };
            _flows[flow] = 0;
            _ = flow.RunAsync(_stop.Token).ContinueWith(_ => _flows.TryRemove(flow, out byte _), TaskScheduler.Default);
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
        _acceptLoop.Wait(TimeSpan.FromSeconds(5));
    }

    private sealed class Flow(Socket client, Socket upstream)
    {
        public volatile bool Blackholed;

        public async Task RunAsync(CancellationToken stop)
        {
            await Task.WhenAny(PumpAsync(client, upstream, stop), PumpAsync(upstream, client, stop));
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
                    await to.SendAsync(new ArraySegment<byte>(buffer, 0, read), SocketFlags.None, stop);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
            }
        }
    }
}
