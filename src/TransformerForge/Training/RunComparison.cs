using System.Text.Json.Nodes;

namespace TransformerForge.Training;

/// <summary>A run's validation curve (step → validation loss) read from its <c>metrics.jsonl</c>.</summary>
public sealed record ValidationCurve(string Label, IReadOnlyList<(int Step, double Loss)> Points)
{
    public double Final => Points[^1].Loss;
    public (int Step, double Loss) Best => Points.MinBy(p => p.Loss);

    /// <summary>The first evaluated step whose validation loss is at most <paramref name="target"/>, or null if never.</summary>
    public int? FirstStepAtOrBelow(double target) => Points.Where(p => p.Loss <= target).Select(p => (int?)p.Step).FirstOrDefault();

    public static ValidationCurve Read(string label, string metricsPath)
    {
        var points = new List<(int, double)>();
        foreach (JsonObject row in MetricsLog.Read(metricsPath))
            if (row["kind"]?.GetValue<string>() == "eval" && row["val_loss"] is { } v && row["step"] is { } s)
                points.Add((s.GetValue<int>(), v.GetValue<double>()));
        if (points.Count == 0) throw new InvalidDataException($"{metricsPath} holds no evaluations (kind \"eval\" with val_loss)");
        return new ValidationCurve(label, points);
    }
}

/// <summary>
/// Compares candidate runs with baseline runs of the same budget (paired by position, e.g. by seed): each candidate's
/// final and best loss, and the step at which it first reaches its baseline's final validation loss.
/// </summary>
public static class RunComparison
{
    public sealed record Row(ValidationCurve Baseline, ValidationCurve Candidate, int? CandidateStepToBaselineFinal)
    {
        /// <summary>Fraction of the baseline's steps the candidate needed to match its final loss.</summary>
        public double? StepFraction => CandidateStepToBaselineFinal is { } s ? (double)s / Baseline.Points[^1].Step : null;
    }

    public static IReadOnlyList<Row> Compare(IReadOnlyList<ValidationCurve> baselines, IReadOnlyList<ValidationCurve> candidates)
    {
        if (baselines.Count != candidates.Count || baselines.Count == 0)
            throw new ArgumentException($"need as many candidate runs as baseline runs (got {baselines.Count} and {candidates.Count})");
        return baselines.Zip(candidates, (b, c) => new Row(b, c, c.FirstStepAtOrBelow(b.Final))).ToList();
    }
}
