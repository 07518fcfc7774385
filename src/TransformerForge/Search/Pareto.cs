namespace TransformerForge.Search;

/// <summary>Pareto dominance over a study's objectives: the front is the set of complete trials no other beats on
/// every objective at once.</summary>
public static class Pareto
{
    /// <summary>Whether <paramref name="a"/> is at least as good as <paramref name="b"/> on every objective and better on one.</summary>
    public static bool Dominates(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        bool strictly = false;
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i] > b[i]) return false;
            if (a[i] < b[i]) strictly = true;
        }
        return strictly;
    }

    /// <summary>The objective values of a complete trial turned so lower is better, or null when one is missing.</summary>
    public static double[]? Losses(TrialRecord trial, IReadOnlyList<Objective> objectives)
    {
        if (trial.State != TrialState.Complete) return null;
        var losses = new double[objectives.Count];
        for (int i = 0; i < objectives.Count; i++)
        {
            if (trial.Metric(objectives[i].Metric) is not { } v || !double.IsFinite(v)) return null;
            losses[i] = objectives[i].Loss(v);
        }
        return losses;
    }

    /// <summary>The non-dominated complete trials, by trial number (one per set of equal values: the first found).</summary>
    public static IReadOnlyList<TrialRecord> Front(IEnumerable<TrialRecord> trials, IReadOnlyList<Objective> objectives)
    {
        // In lexicographic order of the losses, anything that dominates a trial comes before it, and is either on the
        // front or dominated by a member that then dominates the trial too: checking the front so far is enough.
        var scored = trials.Select(t => (Trial: t, Losses: Losses(t, objectives))).Where(x => x.Losses is not null)
            .OrderBy(x => x.Losses!, LexicographicComparer.Instance).ThenBy(x => x.Trial.Number).ToList();
        var front = new List<(TrialRecord Trial, double[] Losses)>();
        foreach (var (trial, losses) in scored)
            if (!front.Any(f => Dominates(f.Losses, losses!) || f.Losses.SequenceEqual(losses!))) front.Add((trial, losses!));
        return front.Select(f => f.Trial).OrderBy(t => t.Number).ToList();
    }

    sealed class LexicographicComparer : IComparer<double[]>
    {
        public static readonly LexicographicComparer Instance = new();

        public int Compare(double[]? a, double[]? b)
        {
            for (int i = 0; i < a!.Length; i++)
            {
                int c = a[i].CompareTo(b![i]);
                if (c != 0) return c;
            }
            return 0;
        }
    }

    /// <summary>The best complete trial on the primary objective (ties: the earliest), or null.</summary>
    public static TrialRecord? Best(IEnumerable<TrialRecord> trials, Objective primary) =>
        trials.Where(t => t.State == TrialState.Complete && t.Metric(primary.Metric) is { } v && double.IsFinite(v))
            .OrderBy(t => primary.Loss(t.Metric(primary.Metric)!.Value)).ThenBy(t => t.Number).FirstOrDefault();

    /// <summary>Hypervolume of a two-objective front (losses) up to a reference point, for comparing fronts.</summary>
    public static double Hypervolume2D(IEnumerable<(double X, double Y)> points, (double X, double Y) reference)
    {
        var sorted = points.Where(p => p.X < reference.X && p.Y < reference.Y).OrderBy(p => p.X).ThenBy(p => p.Y).ToList();
        double volume = 0, bestY = reference.Y;
        foreach (var (x, y) in sorted)
        {
            if (y >= bestY) continue;
            volume += (reference.X - x) * (bestY - y);
            bestY = y;
        }
        return volume;
    }
}
