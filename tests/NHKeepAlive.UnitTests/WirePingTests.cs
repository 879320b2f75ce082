using System;
using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using Moq;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>The pool's own COM_PING on a socket, against a scripted server end on loopback.</summary>
[TestFixture]
public class WirePingTests
{
    private static readonly byte[] s_ok = [0x07, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];

    [Test]
    public void A_ping_writes_one_COM_PING_and_an_OK_reply_is_alive()
    {
        using var pair = new LoopbackPair();
        var received = Answer(pair, s_ok);

        Assert.That(WirePing.Ping(pair.Client.Client, TimeSpan.FromSeconds(5)), Is.EqualTo(WirePingResult.Ok));
        Assert.That(received, Is.EqualTo(new byte[] { 0x01, 0x00, 0x00, 0x00, 0x0e }));
        Assert.That(pair.Client.Client.Poll(0, SelectMode.SelectRead), Is.False, "the reply was read whole: nothing is left for the driver");
    }

    [Test]
    public void A_reply_that_arrives_in_pieces_is_read_whole()
    {
        using var pair = new LoopbackPair();
        var server = pair.Server;
        using var sent = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            var request = new byte[5];
            _ = server.Receive(request);
            server.Send(s_ok, 0, 2, SocketFlags.None);
            Thread.Sleep(30);
            server.Send(s_ok, 2, 4, SocketFlags.None);
            Thread.Sleep(30);
            server.Send(s_ok, 6, s_ok.Length - 6, SocketFlags.None);
            sent.Set();
        });
        thread.Start();

        Assert.That(WirePing.Ping(pair.Client.Client, TimeSpan.FromSeconds(5)), Is.EqualTo(WirePingResult.Ok));
        Assert.That(sent.Wait(5000), Is.True);
        thread.Join();
    }

    [Test]
    public void An_error_packet_unasked_bytes_or_a_closed_socket_is_a_dead_connection()
    {
        using (var pair = new LoopbackPair())
        {
            // ERR 1053 "Server shutdown in progress", as a server going down answers.
            _ = Answer(pair, [0x09, 0x00, 0x00, 0x01, 0xFF, 0x1D, 0x04, 0x23, 0x30, 0x38, 0x53, 0x30, 0x31]);
            Assert.That(WirePing.Ping(pair.Client.Client, TimeSpan.FromSeconds(5)), Is.EqualTo(WirePingResult.Failed));
        }

        using (var pair = new LoopbackPair())
        {
            // An OK followed by bytes nobody asked for (an error packet before closing, say).
            _ = Answer(pair, [.. s_ok, 0x05, 0x00, 0x00]);
            Assert.That(WirePing.Ping(pair.Client.Client, TimeSpan.FromSeconds(5)), Is.EqualTo(WirePingResult.Failed));
        }

        using (var pair = new LoopbackPair())
        {
            pair.Server.Shutdown(SocketShutdown.Both);
            Assert.That(WirePing.Ping(pair.Client.Client, TimeSpan.FromSeconds(5)), Is.EqualTo(WirePingResult.Failed));
        }
    }

    [TestCase(new byte[] { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32 }, TestName = "a TLS alert record")]
    [TestCase(new byte[] { 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00 }, TestName = "an OK with the wrong sequence number")]
    [TestCase(new byte[] { 0x01, 0x00, 0x00, 0x01, 0xFE }, TestName = "a packet that is neither OK nor ERR")]
    public void A_reply_that_is_not_an_answer_to_COM_PING_is_garbled(byte[] reply)
    {
        using var pair = new LoopbackPair();
        _ = Answer(pair, reply);

        Assert.That(WirePing.Ping(pair.Client.Client, TimeSpan.FromSeconds(5)), Is.EqualTo(WirePingResult.Garbled));
    }

    [Test]
    public void A_silent_server_is_a_timeout_after_the_timeout_and_not_before()
    {
        using var pair = new LoopbackPair();
        var timeout = TimeSpan.FromMilliseconds(300);
        var watch = Stopwatch.StartNew();

        var result = WirePing.Ping(pair.Client.Client, timeout);

        Assert.That(result, Is.EqualTo(WirePingResult.Timeout));
        Assert.That(watch.Elapsed, Is.GreaterThanOrEqualTo(timeout - TimeSpan.FromMilliseconds(20)).And.LessThan(TimeSpan.FromSeconds(3)));
    }

    /// <summary>
    /// A keepalive batch on the wire where the first connection's server never answers: only that one is
    /// closed (after the validation timeout); the others' replies, already waiting, still count, and every
    /// slot comes back.
    /// </summary>
    [Test]
    public void A_silent_connection_in_a_keepalive_batch_costs_only_itself()
    {
        var pairs = Enumerable.Range(0, 4).Select(_ => new LoopbackPair()).ToList();
        try
        {
            var unclaimed = new ConcurrentQueue<LoopbackPair>(pairs);
            using var f = new FakePoolFixture(o =>
            {
                o.KeepAliveInterval = TimeSpan.FromSeconds(60);
                o.ValidationTimeout = TimeSpan.FromMilliseconds(300);
                o.MaxPoolSize = 4;
            });
            f.Driver.Setup(d => d.FindSocket(It.IsAny<DbConnection>())).Returns(() => (unclaimed.TryDequeue(out var pair) ? pair.Client.Client : null, true));
            foreach (var pair in pairs.Skip(1))
                Serve(pair);
            var connections = f.RentMany(4);
            connections.ForEach(c => f.Pool.Return(c)); // the silent one first: first in the batch

            for (var i = 0; i < 4; i++)
                f.Advance(TimeSpan.FromSeconds(15));

            var stats = f.Pool.GetStatistics();
            Assert.That(f.Pings, Is.Empty, "pinged on the wire, not through the driver");
            Assert.That((stats.KeepAlivePings, stats.Evicted, stats.Idle), Is.EqualTo((4L, 1L, 3)));
            Assert.That(f.Log.Messages("ConnectionEvicted").Single(), Does.Contain("KeepAliveFailed").And.Contain("no answer"));
            var again = f.RentMany(4); // every slot came back: a fifth would time out
            Assert.That(again, Has.Count.EqualTo(4));
            again.ForEach(c => f.Pool.Return(c));
        }
        finally
        {
            pairs.ForEach(p => p.Dispose());
        }
    }

    /// <summary>Answers every COM_PING on the server's end with an OK until the socket closes.</summary>
    private static void Serve(LoopbackPair pair) => OnServer(pair, new byte[5], request => true, s_ok);

    /// <summary>Reads the request on the server's end and writes <paramref name="reply"/>; returns the request (filled when the ping has sent it).</summary>
    private static byte[] Answer(LoopbackPair pair, byte[] reply)
    {
        var request = new byte[5];
        OnServer(pair, request, _ => false, reply);
        return request;
    }

    /// <summary>On a thread: reads a 5-byte request, writes <paramref name="reply"/>, and again while <paramref name="again"/> says so, until the socket closes.</summary>
    private static void OnServer(LoopbackPair pair, byte[] request, Func<byte[], bool> again, byte[] reply)
    {
        var server = pair.Server;
        new Thread(() =>
        {
            try
            {
                do
                {
                    var read = 0;
                    while (read < request.Length)
                    {
                        var n = server.Receive(request, read, request.Length - read, SocketFlags.None);
                        if (n == 0)
                            return;
                        read += n;
                    }

                    server.Send(reply);
                }
                while (again(request));
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // The test is over.
            }
        }) { IsBackground = true }.Start();
    }
}
