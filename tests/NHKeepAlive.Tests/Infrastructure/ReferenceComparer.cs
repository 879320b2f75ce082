using System.Collections.Generic;
using System.Runtime.CompilerServices;

namespace NHKeepAlive.Tests.Infrastructure;

/// <summary>Compares by identity: a test tracks connection objects, whatever their Equals says.</summary>
internal sealed class ReferenceComparer : IEqualityComparer<object>
{
    public static readonly ReferenceComparer Instance = new();

    public new bool Equals(object? x, object? y) => ReferenceEquals(x, y);

    public int GetHashCode(object obj) => RuntimeHelpers.GetHashCode(obj);
}
