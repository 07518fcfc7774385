using ScottPlot;
using TransformerForge.Training;

namespace TransformerForge.Cli.Training;

/// <summary>Draws <c>loss.png</c> from a run's <c>metrics.jsonl</c>: training loss and validation loss against the step.</summary>
public static class LossPlot
{
    public const string FileName = "loss.png";

    /// <summary>Writes the plot next to the metrics file; returns its path, or null when there is nothing to plot yet.</summary>
    public static string? Write(string runDirectory)
    {
        var metricsPath = Path.Combine(runDirectory, MetricsLog.FileName);
        if (!File.Exists(metricsPath)) return null;
        var rows = MetricsLog.Read(metricsPath);
        var train = Points(rows, "train", "loss");
        var eval = Points(rows, "eval", "val_loss");
        if (train.Xs.Length == 0 && eval.Xs.Length == 0) return null;

        var plot = new Plot();
        if (train.Xs.Length > 0)
        {
            var line = plot.Add.ScatterLine(train.Xs, train.Ys);
            line.LegendText = "train loss";
        }
        if (eval.Xs.Length > 0)
        {
            var line = plot.Add.Scatter(eval.Xs, eval.Ys);
            line.LegendText = "validation loss";
        }
        plot.XLabel("step");
        plot.YLabel("loss (nats/token)");
        plot.Title(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(runDirectory))));
        plot.ShowLegend(Alignment.UpperRight);
        var path = Path.Combine(runDirectory, FileName);
        plot.SavePng(path, 900, 500);
        return path;
    }

    static (double[] Xs, double[] Ys) Points(IReadOnlyList<System.Text.Json.Nodes.JsonObject> rows, string kind, string key)
    {
        var xs = new List<double>();
        var ys = new List<double>();
        foreach (var row in rows)
        {
            if (row["kind"]?.GetValue<string>() != kind || row[key] is null || row["step"] is null) continue;
            var y = row[key]!.GetValue<double>();
            if (!double.IsFinite(y)) continue;
            xs.Add(row["step"]!.GetValue<int>());
            ys.Add(y);
        }
        return (xs.ToArray(), ys.ToArray());
    }
}
