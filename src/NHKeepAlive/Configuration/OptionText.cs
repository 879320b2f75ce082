using System;
using System.Globalization;
using System.Linq;

namespace NHKeepAlive;

/// <summary>
/// How option values are written as text: the parsers behind <c>nhkeepalive.*</c> properties and the
/// connection string's pool keywords, and how a default is shown in README's options table.
/// </summary>
internal static class OptionText
{
    /// <summary>
    /// A duration: <c>500ms</c>, <c>3s</c>, <c>2m</c>, <c>1h</c>, a bare number of seconds, or
    /// <c>hh:mm:ss</c>. A number too large for a <see cref="TimeSpan"/> becomes <see cref="TimeSpan.MaxValue"/>,
    /// which the range check then refuses with the option's limit.
    /// </summary>
    public static TimeSpan ParseDuration(string key, string value)
    {
        var text = (value ?? string.Empty).Trim();
        (string Suffix, double FactorMs)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach (var (suffix, factorMs) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && TryParseNonNegative(text.Substring(0, text.Length - suffix.Length).Trim(), out var number))
            {
                return FromMilliseconds(number * factorMs);
            }
        }

        if (TryParseNonNegative(text, out var seconds))
            return FromMilliseconds(seconds * 1000);
        if (text.Contains(':') && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span) && span >= TimeSpan.Zero)
            return span;
        throw new KeepAliveConfigurationException(
            $"NHKeepAlive property '{key}' has the value '{value}', which is not a duration. Use a number with a unit (500ms, 3s, 2m, 1h), a bare number of seconds, or hh:mm:ss.");
    }

    /// <summary>A whole number, as a property gives it.</summary>
    public static int ParseInt(string key, string value)
    {
        if (int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var result))
            return result;
        throw new KeepAliveConfigurationException($"NHKeepAlive property '{key}' has the value '{value}', which is not a whole number.");
    }

    /// <summary><c>true</c>/<c>false</c>, <c>yes</c>/<c>no</c>, <c>on</c>/<c>off</c>, <c>1</c>/<c>0</c>.</summary>
    public static bool ParseBool(string key, string value)
    {
        switch ((value ?? string.Empty).ToUpperInvariant())
        {
            case "TRUE" or "YES" or "ON" or "1":
                return true;
            case "FALSE" or "NO" or "OFF" or "0":
                return false;
            default:
                throw new KeepAliveConfigurationException($"NHKeepAlive property '{key}' has the value '{value}'. Use true or false.");
        }
    }

    /// <summary><c>auto</c> (or blank), <c>always</c> or <c>never</c>.</summary>
    public static SessionResetPolicy ParseSessionReset(string key, string value)
    {
        switch ((value ?? string.Empty).ToUpperInvariant())
        {
            case "" or "AUTO":
                return SessionResetPolicy.Auto;
            case "ALWAYS":
                return SessionResetPolicy.Always;
            case "NEVER":
                return SessionResetPolicy.Never;
            default:
                throw new KeepAliveConfigurationException(
                    $"NHKeepAlive property '{key}' has the value '{value}'. Use auto (reset a connection whose session changed; the default), always (reset on every return: one round trip each) or never (the caller keeps session state clean itself).");
        }
    }

    /// <summary>
    /// A count from a connection string keyword (the driver has already checked that it is a number).
    /// One beyond <see cref="int"/> becomes <see cref="int.MaxValue"/>, which the range check refuses.
    /// </summary>
    public static int ParseConnectionStringCount(string keyword, string value)
    {
        if (long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var result))
            return result > int.MaxValue ? int.MaxValue : result < int.MinValue ? int.MinValue : (int)result;
        throw new KeepAliveConfigurationException($"The connection string's '{keyword}' has the value '{value}', which is not a whole number.");
    }

    /// <summary>A number of seconds from a connection string keyword (<c>Connection Lifetime</c>, <c>ConnectionIdleTimeout</c>).</summary>
    public static TimeSpan ParseConnectionStringSeconds(string keyword, string value)
    {
        if (TryParseNonNegative(value, out var seconds))
            return FromMilliseconds(seconds * 1000);
        throw new KeepAliveConfigurationException($"The connection string's '{keyword}' has the value '{value}', which is not a number of seconds.");
    }

    /// <summary>A duration as README shows a default: <c>500 ms</c>, <c>15 s</c>, <c>2 min</c>, <c>1 h</c>.</summary>
    public static string ShowDefault(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
            return "0";
        if (value.Ticks % TimeSpan.TicksPerHour == 0)
            return $"{(long)value.TotalHours} h";
        if (value.Ticks % TimeSpan.TicksPerMinute == 0)
            return $"{(long)value.TotalMinutes} min";
        if (value.Ticks % TimeSpan.TicksPerSecond == 0)
            return $"{(long)value.TotalSeconds} s";
        return string.Format(CultureInfo.InvariantCulture, "{0:0.###} ms", value.TotalMilliseconds);
    }

    private static bool TryParseNonNegative(string text, out double number) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out number) && number >= 0 && !double.IsInfinity(number);

    private static TimeSpan FromMilliseconds(double milliseconds)
    {
        var ticks = Math.Round(milliseconds * TimeSpan.TicksPerMillisecond);
        return ticks >= long.MaxValue ? TimeSpan.MaxValue : TimeSpan.FromTicks((long)ticks);
    }
}
