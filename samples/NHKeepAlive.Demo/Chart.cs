using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using ScottPlot;

namespace NHKeepAlive.Demo;

/// <summary>
/// Request latency over time, one panel per configuration stacked on a shared time axis (seconds since
/// that configuration started), errors on their own row at the bottom, faults as labelled vertical lines.
/// </summary>
internal static class Chart
{
    private const int Width = 1200;
    private const int PanelHeight = 330;

    /// <summary>The single-server acts' series: pooled requests and held transactions.</summary>
    public static readonly IReadOnlyList<SeriesKind> RequestKinds =
    [
        new("pooled", "pooled request", MarkerShape.FilledCircle, 6, null, "pooled error", MarkerShape.Eks),
        new("held", "held transaction", MarkerShape.FilledSquare, 5, null, "held error", MarkerShape.Cross),
    ];

    public static void Save(List<Run> runs, string path) => Save(runs, path, RequestKinds);

    public static void Save(List<Run> runs, string path, IReadOnlyList<SeriesKind> kinds, string noun = "requests")
    {
        var colors = new[] { Colors.OrangeRed, Colors.SeaGreen, Colors.SteelBlue };
        var errorRow = System.Math.Log10(0.15);
        var top = System.Math.Log10(System.Math.Max(1000, runs.SelectMany(r => r.Samples).Max(s => s.Milliseconds) * 2));
        var right = runs.SelectMany(r => r.Samples.Select(s => s.AtSeconds).Concat(r.Faults.Select(f => f.AtSeconds))).Max() + 0.5;
        var ticks = new[] { 1, 10, 100, 1000, 10000 };

        var multiplot = new Multiplot();
        multiplot.AddPlots(runs.Count);
        for (var i = 0; i < runs.Count; i++)
        {
            var run = runs[i];
            var plot = multiplot.GetPlot(i);
            var color = colors[i % colors.Length];
            var errors = run.Samples.Count(s => s.Error is not null);
            plot.Title(string.Create(CultureInfo.InvariantCulture, $"{run.Name}: {run.Samples.Count} {noun}, {errors} error{(errors == 1 ? string.Empty : "s")}"), size: 15);
            plot.YLabel("latency (log scale)");
            if (i == runs.Count - 1)
                plot.XLabel("seconds since the configuration started");

            foreach (var kind in kinds)
            {
                var ok = run.Samples.Where(s => s.Error is null && s.Kind == kind.Kind).ToList();
                var scatter = plot.Add.ScatterPoints(ok.Select(s => s.AtSeconds).ToArray(), ok.Select(s => System.Math.Log10(System.Math.Max(s.Milliseconds, 0.1))).ToArray());
                scatter.Color = kind.Color ?? color;
                scatter.MarkerShape = kind.Shape;
                scatter.MarkerSize = kind.Size;
                scatter.LegendText = kind.Legend;

                var failed = run.Samples.Where(s => s.Error is not null && s.Kind == kind.Kind).ToList();
                if (kind.ErrorLegend is null)
                    continue;
                // Errors sit on their own row at the bottom, whatever their latency: they are failures, not fast answers.
                var marks = plot.Add.ScatterPoints(failed.Select(s => s.AtSeconds).ToArray(), failed.Select(_ => errorRow).ToArray());
                marks.Color = Colors.Crimson;
                marks.MarkerShape = kind.ErrorShape;
                marks.MarkerSize = 12;
                marks.MarkerLineWidth = 2;
                marks.LegendText = string.Create(CultureInfo.InvariantCulture, $"{kind.ErrorLegend} ({failed.Count})");
            }

            for (var f = 0; f < run.Faults.Count; f++)
            {
                var fault = run.Faults[f];
                var line = plot.Add.VerticalLine(fault.AtSeconds);
                line.Color = Colors.DimGray.WithAlpha(0.6);
                line.LinePattern = LinePattern.Dashed;
                line.LineWidth = 1.5f;
                // Labels alternate between two heights so that faults close in time stay readable.
                var label = plot.Add.Text(fault.Short, fault.AtSeconds + 0.05, f % 2 == 0 ? top + 0.15 : top - 0.35);
                label.LabelFontSize = 12;
                label.LabelBold = true;
                label.LabelFontColor = Colors.DimGray;
            }

            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                [errorRow, .. ticks.Select(t => System.Math.Log10(t))], ["error", .. ticks.Select(t => t >= 1000 ? $"{t / 1000:0} s" : $"{t:0.#} ms")]);
            plot.Axes.SetLimits(-0.3, right, System.Math.Log10(0.1), top + 0.5);
            plot.Legend.Alignment = Alignment.MiddleRight;
            plot.Legend.FontSize = 11;
            plot.ShowLegend();
            // The same margins in every panel, so that their time axes line up exactly.
            plot.Layout.Fixed(new PixelPadding(left: 80, right: 20, bottom: i == runs.Count - 1 ? 50 : 25, top: 35));
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        multiplot.SavePng(path, Width, PanelHeight * runs.Count + 25);
    }
}

/// <summary>One series of a panel: the samples of one kind, and (when <paramref name="ErrorLegend"/> is set) their errors.</summary>
internal sealed record SeriesKind(string Kind, string Legend, MarkerShape Shape, float Size, Color? Color, string? ErrorLegend, MarkerShape ErrorShape);
