using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using NUnit.Framework;

namespace NHKeepAlive.Tests.Unit;

/// <summary>Each option's descriptor (Configuration/KeepAliveOptionTable.cs): parsing, range, default, and README's table.</summary>
[TestFixture]
public class OptionDescriptorTests
{
    private const string Cs = "Server=127.0.0.1;Port=3306;User ID=u;Password=secret-pw;Database=d";

    /// <summary>For every option: a text that parses (and what it means), and a text that parses to a value out of range (null where every parsed value is in range).</summary>
    private static readonly Dictionary<string, (string Text, object? Expected, string? OutOfRange)> s_cases = new()
    {
        [KeepAliveProperties.ConnectionString] = ("Server=h;Database=x", "Server=h;Database=x", null),
        [KeepAliveProperties.Driver] = ("mysql-connector", MySqlDriver.MySqlConnector, null),
        [KeepAliveProperties.MaxPoolSize] = ("25", 25, "10001"),
        [KeepAliveProperties.MinIdle] = ("3", 3, "-1"),
        [KeepAliveProperties.ConnectionTimeout] = ("2m", TimeSpan.FromMinutes(2), "0"),
        [KeepAliveProperties.ValidationTimeout] = ("1500ms", TimeSpan.FromMilliseconds(1500), "2h"),
        [KeepAliveProperties.ValidationBypassWindow] = ("0.25s", TimeSpan.FromMilliseconds(250), "61m"),
        [KeepAliveProperties.ValidationQuery] = ("DO 1", "DO 1", null),
        [KeepAliveProperties.SocketCheck] = ("off", false, null),
        [KeepAliveProperties.AllowReadOnly] = ("yes", true, null),
        [KeepAliveProperties.SessionReset] = ("always", SessionResetPolicy.Always, null),
        [KeepAliveProperties.MaxLifetime] = ("1h", TimeSpan.FromHours(1), "25:00:00:00"),
        [KeepAliveProperties.IdleTimeout] = ("00:05:00", TimeSpan.FromMinutes(5), "1e300s"),
        [KeepAliveProperties.KeepAliveInterval] = ("90", TimeSpan.FromSeconds(90), "600h"),
        [KeepAliveProperties.LeakDetectionThreshold] = ("30s", TimeSpan.FromSeconds(30), "9999999999999999999999h"),
        [KeepAliveProperties.ShutdownGracePeriod] = ("0", TimeSpan.Zero, "3601s"),
        [KeepAliveProperties.TenantPoolRetireAfter] = ("15m", TimeSpan.FromMinutes(15), "700h"),
        [KeepAliveProperties.PoolName] = ("orders", "orders", null),
    };

    private static IEnumerable<string> Names() => KeepAliveOptionTable.All.Select(o => o.Name);

    private static IEnumerable<string> NamesWithARange() => Names().Where(n => s_cases[n].OutOfRange is not null);

    [Test]
    public void Every_option_has_a_test_case_and_a_property_name_constant()
    {
        Assert.That(s_cases.Keys, Is.EquivalentTo(Names()));
        Assert.That(KeepAliveProperties.All, Is.EquivalentTo(Names()));
        Assert.That(KeepAliveOptionTable.All.Select(o => o.Index), Is.Unique);
        foreach (var option in KeepAliveOptionTable.All)
            Assert.That(typeof(KeepAliveOptions).GetProperty(option.Member), Is.Not.Null, option.Member);
    }

    [TestCaseSource(nameof(Names))]
    public void A_new_options_object_holds_the_declared_default_and_nothing_is_set_explicitly(string name)
    {
        var option = Find(name);
        var options = new KeepAliveOptions();
        Assert.That(Value(options, option), Is.EqualTo(DefaultOf(option)));
        Assert.That(options.IsExplicit(option), Is.False);
    }

    [TestCaseSource(nameof(Names))]
    public void Each_option_parses_its_text_and_is_then_set_explicitly(string name)
    {
        var option = Find(name);
        var (text, expected, _) = s_cases[name];
        var options = KeepAliveOptions.FromProperties([new(name.ToUpperInvariant(), " " + text + " ")]);
        Assert.That(Value(options, option), Is.EqualTo(expected));
        Assert.That(options.IsExplicit(option), Is.True);
        Assert.That(options.Clone().IsExplicit(option), Is.True, "a copy keeps what was set explicitly");
        Assert.That(KeepAliveOptionTable.All.Where(o => o != option).Any(options.IsExplicit), Is.False);
    }

    [TestCaseSource(nameof(NamesWithARange))]
    public void Each_option_rejects_a_value_out_of_its_range_naming_the_property(string name)
    {
        var option = Find(name);
        var options = KeepAliveOptions.FromProperties([new(name, s_cases[name].OutOfRange!)]);
        options.ConnectionString = Cs;
        Assert.That(option.Problem(options, option.Name), Does.StartWith($"{option.Member} ({name}) is ").And.Contain("it must be"));
        var error = Assert.Throws<KeepAliveConfigurationException>(() => PoolSettings.Validate(options))!;
        Assert.That(error.Message, Does.Contain(name).And.Not.Contain("secret-pw"));
    }

    [Test]
    public void The_defaults_pass_every_range_check()
    {
        var options = new KeepAliveOptions { ConnectionString = Cs };
        foreach (var option in KeepAliveOptionTable.All)
            Assert.That(option.Problem(options, option.Name), Is.Null, option.Name);
        Assert.That(() => PoolSettings.Validate(options), Throws.Nothing);
    }

    [Test]
    public void Setting_an_option_in_code_marks_it_explicit_even_at_its_default()
    {
        var options = new KeepAliveOptions { MaxPoolSize = KeepAliveOptions.DefaultMaxPoolSize };
        Assert.That(options.IsExplicit(KeepAliveOptionTable.MaxPoolSize), Is.True);
        Assert.That(options.IsExplicit(KeepAliveOptionTable.MinIdle), Is.False);
    }

    [TestCase("1e300s")]
    [TestCase("99999999999999h")]
    [TestCase("10675199.02:48:05.4775807")]
    public void A_duration_too_long_for_a_timer_is_refused_not_overflowed(string text)
    {
        var options = KeepAliveOptions.FromProperties([new(KeepAliveProperties.MaxLifetime, text)]);
        options.ConnectionString = Cs;
        var error = Assert.Throws<KeepAliveConfigurationException>(() => PoolSettings.Validate(options))!;
        Assert.That(error.Message, Does.Contain(KeepAliveProperties.MaxLifetime).And.Contain("at most"));
    }

    [Test]
    public void README_options_table_lists_exactly_the_descriptors_with_their_defaults_and_docs()
    {
        var rows = ReadmeOptionsTable();
        Assert.That(rows.Select(r => r.Name), Is.EqualTo(Names()), "README's options table: the same options in the same order");
        foreach (var (name, defaultText, doc) in rows)
        {
            var option = Find(name);
            Assert.That(defaultText, Is.EqualTo(option.DefaultText), $"README's default of {name}");
            Assert.That(doc, Is.EqualTo(option.Doc), $"README's description of {name}");
        }
    }

    [TestCase("max_pool_size", "100")]
    [TestCase("connection_timeout", "15 s")]
    [TestCase("validation_bypass_window", "500 ms")]
    [TestCase("max_lifetime", "30 min")]
    [TestCase("leak_detection_threshold", "0 (off)")]
    [TestCase("session_reset", "`auto`")]
    [TestCase("socket_check", "true")]
    public void A_default_reads_as_README_writes_it(string name, string expected) =>
        Assert.That(Find(KeepAliveProperties.Prefix + name).DefaultText, Is.EqualTo(expected));

    private static KeepAliveOption Find(string name)
    {
        Assert.That(KeepAliveOptionTable.TryFind(name, out var option), Is.True, name);
        return option;
    }

    private static object? Value(KeepAliveOptions options, KeepAliveOption option) =>
        typeof(KeepAliveOptions).GetProperty(option.Member)!.GetValue(options);

    private static object? DefaultOf(KeepAliveOption option) =>
        option.GetType().GetProperty(nameof(KeepAliveOption<int>.Default))!.GetValue(option);

    private static List<(string Name, string Default, string Doc)> ReadmeOptionsTable()
    {
        var directory = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "NHKeepAlive.sln")))
            directory = directory.Parent;
        Assert.That(directory, Is.Not.Null, "the repository root (NHKeepAlive.sln) above the test directory");
        var lines = File.ReadAllLines(Path.Combine(directory!.FullName, "README.md"));
        var start = Array.IndexOf(lines, "### Options");
        Assert.That(start, Is.GreaterThan(0), "README has an '### Options' section");
        var rows = new List<(string, string, string)>();
        foreach (var line in lines.Skip(start + 1).TakeWhile(l => l.Length == 0 || l[0] != '#'))
        {
            if (!line.StartsWith("| `nhkeepalive.", StringComparison.Ordinal))
                continue;
            var cells = line.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray();
            Assert.That(cells, Has.Length.EqualTo(3), line);
            rows.Add((cells[0].Trim('`'), cells[1], cells[2]));
        }

        return rows;
    }
}
