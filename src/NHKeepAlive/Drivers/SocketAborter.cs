using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Reflection;

namespace NHKeepAlive.Drivers;

/// <summary>
/// Finds the TCP socket under a driver's connection and closes it. Neither driver bounds a ping
/// (it can block for minutes on a socket that a firewall blackholed); closing the socket makes the
/// blocked read fail at once, and the driver then reports the connection dead. The socket is found
/// by walking the driver's own objects, so it survives the drivers' internal renames.
/// </summary>
internal static class SocketAborter
{
    private const int MaxDepth = 6;
    private const BindingFlags Fields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    public static bool Abort(object connection) => FindSocket(connection) is { } socket && Abort(socket);

    public static bool Abort(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already shut down or closed: the read is failing anyway.
        }

        socket.Dispose();
        return true;
    }

    internal static Socket? FindSocket(object root)
    {
        var driverAssembly = root.GetType().Assembly;
        var seen = new HashSet<object>(ReferenceComparer.Instance);
        var queue = new Queue<(object Value, int Depth)>();
        queue.Enqueue((root, 0));
        while (queue.Count > 0)
        {
            var (value, depth) = queue.Dequeue();
            if (!seen.Add(value))
                continue;
            if (value is Socket socket)
                return socket;
            if (depth >= MaxDepth)
                continue;
            for (var type = value.GetType(); type is not null && type != typeof(object); type = type.BaseType)
            {
                foreach (var field in type.GetFields(Fields))
                {
                    if (field.FieldType.IsValueType || field.FieldType == typeof(string) || field.FieldType.IsArray)
                        continue;
                    var child = field.GetValue(value);
                    if (child is null)
                        continue;
                    if (child is Socket or Stream or TcpClient || child.GetType().Assembly == driverAssembly)
                        queue.Enqueue((child, depth + 1));
                }
            }
        }

        return null;
    }
}
