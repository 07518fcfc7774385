using System.CommandLine;
using ScottPlot;
using TransformerForge.Training;

namespace TransformerForge.Cli.Commands;

/// <summary>
/// <c>tforge compare --baseline A.jsonl,B.jsonl --candidate C.jsonl,D.jsonl --plot out.png</c>: validation curves of
/// paired runs, their final and best losses, and when each candidate reaches its baseline's final loss.
/// </summary>
public static class CompareCommand
{
    public static Command Create()
    {
        var baseline = new Option<string>("--baseline") { Description = "Comma-separated metrics.jsonl files (or run directories) of the baseline runs.", Required = true };
        var candidate = new Option<string>("--candidate") { Description = "The candidate runs, paired with the baselines in order (e.g. same seeds).", Required = true };
        var plot = new Option<string?>("--plot") { Description = "Write the validation curves to this PNG." };
        var cmd = new Command("compare", "Compare validation curves of candidate runs with baseline runs.") { baseline, candidate, plot };
        cmd.SetAction(r =>
        {
            var b = Curves(r.GetValue(baseline)!);
            var c = Curves(r.GetValue(candidate)!);
            var rows = RunComparison.Compare(b, c);
            Console.WriteLine($"{"baseline",-22} {"final",8} {"best",16} | {"candidate",-22} {"final",8} {"best",16} | reaches baseline final at");
            foreach (var row in rows)
            {
                var (bb, cb) = (row.Baseline.Best, row.Candidate.Best);
                var reach = row.CandidateStepToBaselineFinal is { } s ? $"step {s} ({row.StepFraction:P0} of {row.Baseline.Points[^1].Step})" : "never";
                Console.WriteLine($"{row.Baseline.Label,-22} {row.Baseline.Final,8:F4} {bb.Loss,8:F4} @{bb.Step,6} | {row.Candidate.Label,-22} {row.Candidate.Final,8:F4} {cb.Loss,8:F4} @{cb.Step,6} | {reach}");
            }
            Console.WriteLine($"mean final: baseline {b.Average(x => x.Final):F4}, candidate {c.Average(x => x.Final):F4}");
            if (r.GetValue(plot) is { } png) { Plot(b.Concat(c), png); Console.WriteLine($"plot: {png}"); }
            return 0;
        });
        return cmd;
    }

    static List<ValidationCurve> Curves(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(p =>
        {
            var file = Directory.Exists(p) ? Path.Combine(p, MetricsLog.FileName) : p;
            if (!File.Exists(file)) throw new FileNotFoundException($"metrics file '{file}' does not exist", file);
            var label = Path.GetFileNameWithoutExtension(Directory.Exists(p) ? Path.GetFileName(Path.TrimEndingDirectorySeparator(p)) : p);
            return ValidationCurve.Read(label, file);
        }).ToList();

    static void Plot(IEnumerable<ValidationCurve> curves, string png)
    {
        var plot = new Plot();
        foreach (var curve in curves)
        {
            var line = plot.Add.ScatterLine(curve.Points.Select(p => (double)p.Step).ToArray(), curve.Points.Select(p => p.Loss).ToArray());
            line.LegendText = curve.Label;
        }
        plot.XLabel("step");
        plot.YLabel("validation loss (nats/char)");
        plot.ShowLegend(Alignment.UpperRight);
        var dir = Path.GetDirectoryName(Path.GetFullPath(png));
        if (dir is not null) Directory.CreateDirectory(dir);
        plot.SavePng(png, 900, 500);
    }
}
