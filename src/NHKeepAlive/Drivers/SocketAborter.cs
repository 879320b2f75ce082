using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Security;
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
    private const int MaxVisits = 512;
    // Names of the types that transform the bytes on the socket (compression), upper case.
    private static readonly string[] s_transformingTypes = ["COMPRESS", "ZSTANDARD", "ZLIB", "DEFLATE", "GZIP", "BROTLI"];

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
        Socket? found = null;
        Walk(root, value =>
        {
            found = value as Socket;
            return found is null;
        });
        return found;
    }

    /// <summary>
    /// In one walk: the TCP socket under the connection, and whether the connection speaks the plain
    /// protocol on it, with no TLS stream and no compression anywhere in the driver's objects (what
    /// <see cref="WirePing"/> needs to write to the socket itself).
    /// </summary>
    internal static (Socket? Socket, bool Plain) Inspect(object root)
    {
        Socket? socket = null;
        var plain = true;
        Walk(root, value =>
        {
            socket ??= value as Socket;
            if (value is AuthenticatedStream || Transforms(value.GetType()))
                plain = false;
            return plain || socket is null;
        });
        return (socket, plain);
    }

    /// <summary>Visits the driver's own objects and the streams and sockets they hold, breadth first, until <paramref name="visit"/> says stop.</summary>
    private static void Walk(object root, Func<object, bool> visit)
    {
        var driverAssembly = root.GetType().Assembly;

        // Identity by a scan of the few objects seen (a dozen or two per connection), not a hash set: identity hashes of
        // a new connection's objects (RuntimeHelpers.GetHashCode) were measured at about 30 us per open.
        var seen = new List<object>();
        var queue = new Queue<(object Value, int Depth)>();
        queue.Enqueue((root, 0));
        while (queue.Count > 0 && seen.Count < MaxVisits)
        {
            var (value, depth) = queue.Dequeue();
            if (Contains(seen, value))
                continue;
            seen.Add(value);
            if (!visit(value))
                return;
            if (depth >= MaxDepth || value is Socket)
                continue;
            foreach (var field in ReferenceFields(value.GetType()))
            {
                var child = field.GetValue(value);
                if (child is null)
                    continue;
                if (child is Socket or Stream or TcpClient || child.GetType().Assembly == driverAssembly)
                    queue.Enqueue((child, depth + 1));
            }
        }
    }

    private static bool Contains(List<object> seen, object value)
    {
        foreach (var item in seen)
        {
            if (ReferenceEquals(item, value))
                return true;
        }

        return false;
    }

    // Type -> whether its name says it transforms the bytes (compression): asked of the same few types at every open.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, bool> s_transforms = new();

    private static bool Transforms(Type type) => s_transforms.GetOrAdd(type, static t =>
    {
        var name = t.Name.ToUpperInvariant();
        return Array.Exists(s_transformingTypes, name.Contains);
    });

    // Type -> the fields of it and its base types that may hold an object worth walking into: a walk at every open
    // asks the same few types again and again.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, FieldInfo[]> s_referenceFields = new();

    private static FieldInfo[] ReferenceFields(Type type) => s_referenceFields.GetOrAdd(type, static t =>
    {
        var fields = new List<FieldInfo>();
        for (var current = t; current is not null && current != typeof(object); current = current.BaseType)
        {
            foreach (var field in current.GetFields(Fields))
            {
                if (!field.FieldType.IsValueType && field.FieldType != typeof(string) && !field.FieldType.IsArray)
                    fields.Add(field);
            }
        }

        return [.. fields];
    });
}
