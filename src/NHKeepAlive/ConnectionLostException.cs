using System;
using System.Data.Common;

namespace NHKeepAlive;

/// <summary>
/// A connection that a caller held died while a transaction was open on it. The server rolled the
/// transaction back when the connection went: nothing of it was committed, and NHKeepAlive did not
/// reopen the connection (that would silently lose the transaction's earlier statements). Begin a
/// new transaction (or unit of work) and run it again.
/// </summary>
public sealed class ConnectionLostException : DbException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public ConnectionLostException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ConnectionLostException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with a default message.</summary>
    public ConnectionLostException()
        : base("The connection was lost while a transaction was open; nothing of the transaction was committed.")
    {
    }
}
