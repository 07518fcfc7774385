using ScottPlot;
using TransformerForge.Search;

namespace TransformerForge.Cli.Search;

/// <summary>
/// The study plot: with two objectives (or --x/--y), every complete trial as a grey point and the Pareto front as
/// labelled points joined by a line; with one objective, the objective of each trial by number and the best so far.
/// </summary>
public static class StudyPlot
{
    public static string? Write(StudyDefinition definition, IReadOnlyList<TrialRecord> trials, string path, string? x, string? y,
        IReadOnlyList<(string Name, IReadOnlyList<TrialRecord> Trials)>? others = null)
    {
        var complete = trials.Where(t => t.State == TrialState.Complete).ToList();
        if (complete.Count == 0) return null;
        var objectives = definition.Objectives;
        var yObjective = y is null ? objectives[0] : Objective.Of(y);
        Objective? xObjective = x is not null ? Objective.Of(x) : objectives.Count > 1 ? objectives[1] : null;
        var plot = new Plot();
        if (xObjective is null)
        {
            var points = complete.Where(t => t.Metric(yObjective.Metric) is not null).ToList();
            var all = plot.Add.ScatterPoints(points.Select(t => (double)t.Number).ToArray(), points.Select(t => t.Metric(yObjective.Metric)!.Value).ToArray());
            all.LegendText = "trials";
            double best = double.NaN;
            var bestXs = new List<double>();
            var bestYs = new List<double>();
            foreach (var t in points)
            {
                var v = t.Metric(yObjective.Metric)!.Value;
                if (double.IsNaN(best) || yObjective.Better(v, best)) best = v;
                bestXs.Add(t.Number);
                bestYs.Add(best);
            }
            var line = plot.Add.ScatterLine(bestXs.ToArray(), bestYs.ToArray());
            line.LegendText = "best so far";
            plot.XLabel("trial");
        }
        else
        {
            var pair = new[] { yObjective, xObjective };
            var points = complete.Where(t => t.Metric(xObjective.Metric) is not null && t.Metric(yObjective.Metric) is not null).ToList();
            var all = plot.Add.ScatterPoints(points.Select(t => t.Metric(xObjective.Metric)!.Value).ToArray(), points.Select(t => t.Metric(yObjective.Metric)!.Value).ToArray());
            all.Color = Colors.Gray;
            all.LegendText = "trials";
            var front = Pareto.Front(points, pair).OrderBy(t => t.Metric(xObjective.Metric)).ToList();
            var fx = front.Select(t => t.Metric(xObjective.Metric)!.Value).ToArray();
            var fy = front.Select(t => t.Metric(yObjective.Metric)!.Value).ToArray();
            var line = plot.Add.Scatter(fx, fy);
            line.LegendText = "Pareto front";
            line.ConnectStyle = ConnectStyle.StepHorizontal;
            for (int i = 0; i < front.Count; i++) plot.Add.Text($"#{front[i].Number}", fx[i], fy[i]);
            // Other studies' fronts on the same axes (e.g. a baseline family at the same budget).
            foreach (var (name, otherTrials) in others ?? [])
            {
                var of = Pareto.Front(otherTrials.Where(t => t.State == TrialState.Complete && t.Metric(xObjective.Metric) is not null && t.Metric(yObjective.Metric) is not null), pair)
                    .OrderBy(t => t.Metric(xObjective.Metric)).ToList();
                if (of.Count == 0) continue;
                var otherLine = plot.Add.Scatter(of.Select(t => t.Metric(xObjective.Metric)!.Value).ToArray(), of.Select(t => t.Metric(yObjective.Metric)!.Value).ToArray());
                otherLine.LegendText = $"Pareto front of {name}";
                otherLine.ConnectStyle = ConnectStyle.StepHorizontal;
            }
            plot.XLabel(xObjective.Metric);
        }
        plot.YLabel(yObjective.Metric);
        plot.Title($"study {definition.Name}");
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, 900, 600);
        return path;
    }
}
