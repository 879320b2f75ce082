using System;
using System.Diagnostics;
using System.Net.Sockets;

namespace NHKeepAlive;

/// <summary>
/// A ping written and read by the pool itself on the socket under the driver: one COM_PING packet
/// (5 bytes) and its OK (11), with a blocking <c>poll</c> for the reply on the calling thread, then one
/// read of it. Used for a connection nobody else holds whose protocol is plain (no TLS, no compression),
/// and only on a thread that may block (the housekeeping thread, a synchronous checkout).
/// <para>
/// Why: the drivers' own synchronous <c>Ping()</c> costs several times the CPU of the exchange itself
/// (send, poll, receive). Once a socket has been used asynchronously (MySqlConnector's reset, or any async caller), .NET keeps it
/// non-blocking, and a synchronous read that has to wait is completed by the sockets engine's thread
/// handing the event to a thread-pool worker, which then spins looking for more work; MySql.Data's
/// synchronous calls run on its async code. That dispatch is the runtime's and happens for every reply on
/// such a socket; what the pool saves is the driver's code around the exchange, and by writing a batch of
/// pings before reading any reply, some of the dispatches.
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

    /// <summary>The reply's buffer, one per thread (the housekeeping thread, a synchronous checkout): a ping allocates nothing.</summary>
    [ThreadStatic]
    private static byte[]? t_buffer;

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
        // Usually one poll and one read: the whole reply in one go. Anything after the reply is bytes
        // nobody asked for on an idle connection, which fails it like the socket check does.
        var buffer = t_buffer ??= new byte[MaxReply + 4];
        var read = 0;
        try
        {
            while (true)
            {
                // Past the deadline, a reply already waiting still counts: in a batch, one silent connection
                // must not use up the others' time. poll() takes microseconds as an int: a wait longer than
                // 35 minutes is taken in steps.
                var left = deadline - Stopwatch.GetTimestamp();
                var micros = left <= 0 ? 0 : (int)Math.Min(int.MaxValue, Math.Max(1, left * 1_000_000.0 / Stopwatch.Frequency));
                if (!socket.Poll(micros, SelectMode.SelectRead))
                {
                    if (left <= 0)
                        return WirePingResult.Timeout;
                    continue;
                }

                var n = socket.Receive(buffer, read, buffer.Length - read, SocketFlags.None);
                if (n == 0)
                    return WirePingResult.Failed; // closed by the far end
                read += n;
                if (read < 4)
                    continue;
                var length = buffer[0] | (buffer[1] << 8) | (buffer[2] << 16);
                if (read > 4 && buffer[4] == 0xFF && buffer[3] <= 1)
                    return WirePingResult.Failed; // an error packet, asked for or not (a server closing the session sends one)
                if (buffer[3] != 1 || length == 0 || length > MaxReply)
                    return WirePingResult.Garbled;
                if (read < 4 + length)
                    continue;
                if (read > 4 + length)
                    return WirePingResult.Failed; // more than the reply
                return buffer[4] == 0x00 && length >= 7 ? WirePingResult.Ok : WirePingResult.Garbled; // an error packet returned above
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return WirePingResult.Failed;
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
