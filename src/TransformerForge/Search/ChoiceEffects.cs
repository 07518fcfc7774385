namespace TransformerForge.Search;

/// <summary>One value of one choice across a study's complete trials: how often it was tried, the mean primary metric
/// of those trials, and how often it is in the best trials.</summary>
public sealed record ChoiceEffect(string Parameter, string Value, int Trials, double Mean, int InTop, int TopCount);

/// <summary>
/// What a study says about each choice: for every value, the trials that had it active, their mean primary metric,
/// and its share of the best trials (the top fifth by default). Evolution samples good values more often, so the
/// counts say what the search converged on and the means (confounded by the other choices) which way values pull.
/// </summary>
public static class ChoiceEffects
{
    public static IReadOnlyList<ChoiceEffect> Of(IReadOnlyList<TrialRecord> trials, IReadOnlyList<SpaceParameter> parameters, Objective primary, double topFraction = 0.2)
    {
        var complete = trials.Where(t => t.State == TrialState.Complete && t.Metric(primary.Metric) is { } v && double.IsFinite(v))
            .OrderBy(t => primary.Loss(t.Metric(primary.Metric)!.Value)).ToList();
        int topCount = Math.Max(1, (int)Math.Round(complete.Count * topFraction));
        var top = complete.Take(topCount).Select(t => t.Number).ToHashSet();
        var genomes = complete.ToDictionary(t => t.Number, t => Genome.FromJson(t.Genome, parameters));
        var rows = new List<ChoiceEffect>();
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (p.Choices.Count < 2) continue;
            for (int v = 0; v < p.Choices.Count; v++)
            {
                var with = complete.Where(t => genomes[t.Number][i] == v && genomes[t.Number].IsActive(parameters, i)).ToList();
                if (with.Count == 0) continue;
                rows.Add(new ChoiceEffect(p.Name, p.Choices[v]?.ToJsonString() ?? "null", with.Count,
                    with.Average(t => t.Metric(primary.Metric)!.Value), with.Count(t => top.Contains(t.Number)), topCount));
            }
        }
        return rows;
    }
}
