using System.Collections.Generic;
using System.IO;
using System.Linq;
using ScottPlot;

namespace NHKeepAlive.Demo;

/// <summary>Request latency over time for both configurations, errors marked, faults as vertical lines.</summary>
internal static class Chart
{
    public static void Save(List<Run> runs, string path)
    {
        var plot = new Plot();
        plot.Title("Request latency through the faults that cause \"MySQL server has gone away\"");
        plot.XLabel("seconds since the configuration started");
        plot.YLabel("latency (ms, log scale)");
        var colors = new[] { Colors.OrangeRed, Colors.SeaGreen };
        for (var i = 0; i < runs.Count; i++)
        {
            var run = runs[i];
            var ok = run.Samples.Where(s => s.Error is null).ToList();
            var scatter = plot.Add.ScatterPoints(ok.Select(s => s.AtSeconds).ToArray(), ok.Select(s => System.Math.Log10(System.Math.Max(s.Milliseconds, 0.1))).ToArray());
            scatter.Color = colors[i % colors.Length];
            scatter.MarkerSize = 5;
            scatter.LegendText = $"{run.Name}: ok";
            var failed = run.Samples.Where(s => s.Error is not null).ToList();
            if (failed.Count > 0)
            {
                // Errors sit on their own row at the bottom, whatever their latency: they are failures, not fast answers.
                var errors = plot.Add.ScatterPoints(failed.Select(s => s.AtSeconds).ToArray(), failed.Select(_ => System.Math.Log10(0.15)).ToArray());
                errors.Color = colors[i % colors.Length];
                errors.MarkerShape = MarkerShape.Eks;
                errors.MarkerSize = 12;
                errors.LegendText = $"{run.Name}: error ({failed.Count})";
            }
        }

        var top = System.Math.Log10(System.Math.Max(1000, runs.SelectMany(r => r.Samples).Max(s => s.Milliseconds) * 2));
        for (var i = 0; i < runs.Count; i++)
        {
            foreach (var fault in runs[i].Faults)
            {
                var line = plot.Add.VerticalLine(fault.AtSeconds);
                line.Color = colors[i % colors.Length].WithAlpha(0.5);
                line.LinePattern = LinePattern.Dashed;
                if (i == runs.Count - 1)
                {
                    var label = plot.Add.Text(fault.Short, fault.AtSeconds, top);
                    label.LabelFontSize = 12;
                    label.LabelBold = true;
                    label.LabelFontColor = Colors.DimGray;
                }
            }
        }

        var ticks = new[] { 1, 10, 100, 1000, 10000 };
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            [System.Math.Log10(0.15), .. ticks.Select(t => System.Math.Log10(t))], ["error", .. ticks.Select(t => t >= 1000 ? $"{t / 1000:0} s" : $"{t:0.#} ms")]);
        plot.Axes.SetLimitsY(System.Math.Log10(0.1), top + 0.3);
        plot.ShowLegend(Edge.Bottom);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 1200, 520);
    }
}
