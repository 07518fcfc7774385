using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// Primer's hurdles (So et al. 2021, after the progressive dynamic hurdles of the Evolved Transformer, So et al. 2019):
/// at each fraction <see cref="At"/> of the training budget a candidate must beat the <see cref="Percentile"/>-th
/// percentile of the primary metric that earlier candidates had at that point, or it stops there (pruned, keeping the
/// metric it had). Every trial measures the metric at every hurdle; thresholds are computed when a trial is proposed,
/// from the trials finished by then, and written into its plan; a threshold needs <see cref="MinTrials"/> earlier values.
/// </summary>
public sealed record HurdlePolicy(IReadOnlyList<double> At, double Percentile = 50, int MinTrials = 5)
{
    public void Validate()
    {
        if (At.Count == 0) throw new SearchException("hurdles: give at least one fraction of the budget");
        for (int i = 0; i < At.Count; i++)
        {
            if (At[i] is <= 0 or >= 1) throw new SearchException($"hurdles: {At[i]} is not a fraction of the budget in (0, 1)");
            if (i > 0 && At[i] <= At[i - 1]) throw new SearchException("hurdles: fractions must increase");
        }
        if (Percentile is <= 0 or >= 100) throw new SearchException($"hurdles: percentile must be in (0, 100), got {Percentile}");
        if (MinTrials < 1) throw new SearchException($"hurdles: minimum trials must be at least 1, got {MinTrials}");
    }

    /// <summary>The hurdles for the next trial: one per fraction, with a threshold where enough earlier trials measured it.</summary>
    public IReadOnlyList<Hurdle> Thresholds(IReadOnlyList<TrialRecord> history, Objective primary)
    {
        var hurdles = new List<Hurdle>();
        foreach (var at in At)
        {
            var losses = history.Where(t => t.State is TrialState.Complete or TrialState.Pruned)
                .SelectMany(t => t.Intermediate.Where(v => Math.Abs(v.At - at) < 1e-9 && double.IsFinite(v.Value)))
                .Select(v => primary.Loss(v.Value)).Order().ToList();
            hurdles.Add(new Hurdle(at, losses.Count < MinTrials ? null : primary.Loss(PercentileOf(losses, Percentile))));
        }
        return hurdles;
    }

    /// <summary>Linear-interpolated percentile of sorted values (numpy's default).</summary>
    public static double PercentileOf(IReadOnlyList<double> sorted, double percentile)
    {
        double rank = percentile / 100 * (sorted.Count - 1);
        int lo = (int)Math.Floor(rank), hi = (int)Math.Ceiling(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    /// <summary>Whether a trial whose primary metric is <paramref name="value"/> at a hurdle fails it (worse than its
    /// threshold, or not a number); a hurdle without a threshold yet only measures.</summary>
    public static bool Fails(Hurdle hurdle, double value, Objective primary) =>
        hurdle.Threshold is { } threshold && (!double.IsFinite(value) || primary.Loss(value) > primary.Loss(threshold));

    public JsonObject ToJson() => new()
    {
        ["at"] = new JsonArray(At.Select(a => (JsonNode?)a).ToArray()), ["percentile"] = Percentile, ["min_trials"] = MinTrials,
    };

    public static HurdlePolicy FromJson(JsonObject o) => new(
        ((JsonArray)o["at"]!).Select(n => n!.GetValue<double>()).ToList(), o["percentile"]!.GetValue<double>(), o["min_trials"]!.GetValue<int>());
}
