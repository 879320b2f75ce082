using System;

namespace NHKeepAlive;

/// <summary>An option, property or connection string that NHKeepAlive cannot use; the message says what to fix.</summary>
public sealed class KeepAliveConfigurationException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and how to fix it.</param>
    public KeepAliveConfigurationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the error that caused it.</summary>
    /// <param name="message">What is wrong and how to fix it.</param>
    /// <param name="innerException">The cause.</param>
    public KeepAliveConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with a default message.</summary>
    public KeepAliveConfigurationException()
        : base("The NHKeepAlive configuration is not valid.")
    {
    }
}
