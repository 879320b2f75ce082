using System;
using System.Diagnostics;
using System.Net.Sockets;

namespace NHKeepAlive;

/// <summary>
/// A ping written and read by the pool itself on the socket under the driver: one COM_PING packet
/// (5 bytes) and its OK (11), with a blocking <c>poll</c> for the reply on the calling thread. Used for a
/// connection nobody else holds whose protocol is plain (no TLS, no compression), and only on a thread
/// that may block (the housekeeping thread, a synchronous checkout).
/// <para>
/// Why: the drivers' own synchronous <c>Ping()</c> costs 3-4 times as much CPU as the exchange itself.
/// Once a socket has been used asynchronously (MySqlConnector's reset, or any async caller), .NET keeps it
/// non-blocking, and a synchronous read that has to wait is completed by the sockets engine's thread
/// handing the event to a thread-pool worker, which then spins looking for more work; MySql.Data's
/// synchronous calls run on its async code. A <c>poll</c> on the socket wakes only this thread.
/// </para>
/// <para>
/// Safe for the driver: every MySQL command starts its packet sequence at 0, the driver keeps no count
/// across commands, and an idle connection has nothing buffered (the socket check sees unasked bytes).
/// Anything but a whole, well-formed reply fails the ping, and a failed ping closes the connection, so
/// the driver never reads a stream this left half-read.
/// </para>
/// </summary>
internal static class WirePing
{
    /// <summary>Payload length 1 (3 bytes, little-endian), sequence 0, COM_PING (0x0e).</summary>
    private static readonly byte[] s_request = [0x01, 0x00, 0x00, 0x00, 0x0e];

    /// <summary>An OK packet is 7 bytes with nothing to say; MariaDB may append session-state information.</summary>
    private const int MaxReply = 1024;

    public static WirePingResult Ping(Socket socket, TimeSpan timeout)
    {
        var deadline = DeadlineAfter(timeout);
        return Send(socket) ? Receive(socket, deadline) : WirePingResult.Failed;
    }

    /// <summary>A <see cref="Stopwatch"/> timestamp <paramref name="timeout"/> from now.</summary>
    public static long DeadlineAfter(TimeSpan timeout) => Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Writes COM_PING; false if the socket is closed.</summary>
    public static bool Send(Socket socket)
    {
        try
        {
            return socket.Send(s_request, 0, s_request.Length, SocketFlags.None) == s_request.Length;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Reads the reply to a COM_PING <see cref="Send"/> wrote, waiting until <paramref name="deadline"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public static WirePingResult Receive(Socket socket, long deadline)
    {
        try
        {
            var header = new byte[4];
            var read = Read(socket, header, header.Length, deadline);
            if (read != WirePingResult.Ok)
                return read;
            var length = header[0] | (header[1] << 8) | (header[2] << 16);
            if (header[3] != 1 || length == 0 || length > MaxReply)
                return WirePingResult.Garbled;
            var payload = new byte[length];
            read = Read(socket, payload, length, deadline);
            if (read != WirePingResult.Ok)
                return read;
            return payload[0] switch
            {
                0x00 => length >= 7 ? WirePingResult.Ok : WirePingResult.Garbled,
                0xFF => WirePingResult.Failed, // an error packet: the server is shutting the session down
                _ => WirePingResult.Garbled,
            };
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return WirePingResult.Failed;
        }
    }

    private static WirePingResult Read(Socket socket, byte[] buffer, int count, long deadline)
    {
        var offset = 0;
        var previousTimeout = socket.ReceiveTimeout;
        try
        {
            while (offset < count)
            {
                var left = deadline - Stopwatch.GetTimestamp();
                if (left <= 0)
                    return WirePingResult.Timeout;

                // A blocking receive, not a poll: on a socket .NET has put in non-blocking mode (any async
                // use), a receive waiting in the socket's queue is completed by the sockets engine's thread
                // itself, while data nobody waits for is handed to a thread-pool worker.
                socket.ReceiveTimeout = (int)Math.Min(int.MaxValue, Math.Max(1, left * 1000.0 / Stopwatch.Frequency));
                int n;
                try
                {
                    n = socket.Receive(buffer, offset, count - offset, SocketFlags.None);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
                {
                    return WirePingResult.Timeout;
                }

                if (n == 0)
                    return WirePingResult.Failed; // closed by the far end
                offset += n;
            }

            return WirePingResult.Ok;
        }
        finally
        {
            try
            {
                socket.ReceiveTimeout = previousTimeout;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Closed meanwhile: the ping has failed, and the connection goes.
            }
        }
    }
}

/// <summary>How a <see cref="WirePing"/> ended.</summary>
internal enum WirePingResult
{
    /// <summary>The server answered OK.</summary>
    Ok,

    /// <summary>The connection is dead: closed, reset, or the server answered with an error.</summary>
    Failed,

    /// <summary>No whole answer within the timeout.</summary>
    Timeout,

    /// <summary>An answer that is not a reply to COM_PING: the connection's protocol is not what it seemed (the pool stops pinging on the wire).</summary>
    Garbled,
}
