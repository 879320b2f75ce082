using System;
using System.Collections.Concurrent;
using System.Linq;
using Microsoft.Extensions.Logging;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>Keeps every log entry, for tests that check what the pool said.</summary>
internal sealed class CapturingLoggerFactory : ILoggerFactory
{
    public ConcurrentQueue<(LogLevel Level, EventId Event, string Message)> Entries { get; } = new();

    public bool Has(string eventName) => Entries.Any(e => e.Event.Name == eventName);

    public string[] Messages(string eventName) => Entries.Where(e => e.Event.Name == eventName).Select(e => e.Message).ToArray();

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerFactory owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Entries.Enqueue((logLevel, eventId, $"{DateTime.UtcNow:HH:mm:ss.fff} {formatter(state, exception)}"));
    }
}
