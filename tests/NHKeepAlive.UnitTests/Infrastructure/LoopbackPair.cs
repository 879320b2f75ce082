using System;
using System.Net;
using System.Net.Sockets;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>Two ends of one TCP connection on loopback: a client socket as a driver would hold it, and the server's end a test writes with.</summary>
internal sealed class LoopbackPair : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    public LoopbackPair()
    {
        _listener.Start();
        Client.Connect((IPEndPoint)_listener.LocalEndpoint);
        Server = _listener.AcceptSocket();
    }

    public TcpClient Client { get; } = new();

    public Socket Server { get; }

    public void Dispose()
    {
        Server.Close();
        Client.Close();
        _listener.Stop();
    }
}
