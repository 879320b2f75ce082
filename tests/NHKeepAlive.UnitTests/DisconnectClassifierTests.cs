using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using NHKeepAlive.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>The classification table, with the drivers' real exception types in the shapes seen against MariaDB 10.11.</summary>
[TestFixture]
public class DisconnectClassifierTests
{
    private static IEnumerable<TestCaseData> Disconnects()
    {
        var reset = new SocketException((int)SocketError.ConnectionReset);
        yield return new TestCaseData(DriverExceptions.MySqlData("Fatal error encountered during command execution.", 0,
            new IOException("Unable to write data to the transport connection: Connection reset by peer.", reset))).SetName("MySql.Data, wait_timeout expired: number 0 over IOException");
        yield return new TestCaseData(DriverExceptions.MySqlData("Fatal error encountered during command execution.", 0,
            DriverExceptions.MySqlData("Fatal error encountered attempting to read the resultset.", 0,
                DriverExceptions.MySqlData("Reading from the stream has failed.", 0, new EndOfStreamException())))).SetName("MySql.Data, KILL or restart: nested number 0 over EndOfStream");
        yield return new TestCaseData(reset).SetName("MySqlConnector, wait_timeout expired: a bare SocketException");
        yield return new TestCaseData(DriverExceptions.MySqlConnector(0, "Failed to read the result set.", DriverExceptions.MySqlConnectorEndOfStream())).SetName("MySqlConnector, KILL or restart: MySqlEndOfStreamException inside");
        foreach (var number in new[] { 2006, 2013, 2014, 2055, 4031, 1927, 1053 })
        {
            yield return new TestCaseData(DriverExceptions.MySqlData("gone", number)).SetName($"MySql.Data error {number}");
            yield return new TestCaseData(DriverExceptions.MySqlConnector(number, "gone")).SetName($"MySqlConnector error {number}");
        }

        yield return new TestCaseData(new AggregateException(new IOException("broken pipe"))).SetName("An AggregateException around an IOException");
    }

    private static IEnumerable<TestCaseData> StatementErrors()
    {
        yield return new TestCaseData(DriverExceptions.MySqlData("You have an error in your SQL syntax", 1064)).SetName("MySql.Data syntax error 1064");
        yield return new TestCaseData(DriverExceptions.MySqlConnector(1062, "Duplicate entry")).SetName("MySqlConnector duplicate key 1062");
        yield return new TestCaseData(DriverExceptions.MySqlConnector(1205, "Lock wait timeout exceeded")).SetName("Lock wait timeout 1205");
        yield return new TestCaseData(DriverExceptions.MySqlData("Query execution was interrupted", 1317)).SetName("KILL QUERY 1317 leaves the connection usable");
        yield return new TestCaseData(DriverExceptions.MySqlData("Timeout expired.", 0, new TimeoutException())).SetName("MySql.Data command timeout");
        yield return new TestCaseData(new InvalidOperationException("There is already an open DataReader")).SetName("A caller's own misuse");
        yield return new TestCaseData(DriverExceptions.MySqlData("Duplicate entry", 1062, new IOException("unrelated"))).SetName("A numbered server error is the statement's whatever it wraps");
    }

    [TestCaseSource(nameof(Disconnects))]
    public void Errors_that_mean_the_connection_is_gone_are_disconnects(Exception error)
    {
        Assert.That(DisconnectClassifier.IsDisconnect(error), Is.True);
        Assert.That(DisconnectClassifier.Classify(error), Is.Not.Empty);
    }

    [TestCaseSource(nameof(StatementErrors))]
    public void Errors_of_the_statement_never_evict(Exception error) =>
        Assert.That(DisconnectClassifier.IsDisconnect(error), Is.False);

    [Test]
    public void The_error_number_is_read_from_either_driver_and_is_null_for_other_exceptions()
    {
        Assert.That(DisconnectClassifier.ErrorNumber(DriverExceptions.MySqlData("x", 1045)), Is.EqualTo(1045));
        Assert.That(DisconnectClassifier.ErrorNumber(DriverExceptions.MySqlConnector(1045, "x")), Is.EqualTo(1045));
        Assert.That(DisconnectClassifier.ErrorNumber(new IOException()), Is.Null);
        Assert.That(DisconnectClassifier.IsDisconnect(null), Is.False);
    }
}
