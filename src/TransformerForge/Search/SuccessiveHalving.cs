using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// Successive halving (Jamieson &amp; Talwalkar 2016) to share a training budget, in its asynchronous form (ASHA, Li et
/// al. 2020) so that workers never wait for a rung to fill: rung r trains with 1/η^(R-1-r) of the study's budget;
/// whenever a complete trial is in the top 1/η of the complete trials of its rung and has not been promoted yet, it is
/// retrained (from scratch) one rung up with η times the budget; otherwise a new random candidate starts at rung 0.
/// Many candidates get a short look, few get the full budget. The answer is the best trial of the highest rung.
/// </summary>
public sealed class SuccessiveHalving : ISearchAlgorithm
{
    public const string AlgorithmName = "halving";

    public SuccessiveHalving(int eta = 3, int rungs = 3)
    {
        if (eta < 2) throw new SearchException($"halving: eta must be at least 2, got {eta}");
        if (rungs < 2) throw new SearchException($"halving: rungs must be at least 2, got {rungs}");
        Eta = eta;
        Rungs = rungs;
    }

    public int Eta { get; }
    public int Rungs { get; }
    public string Name => AlgorithmName;

    public JsonObject ToJson() => new() { ["name"] = Name, ["eta"] = Eta, ["rungs"] = Rungs };

    /// <summary>The fraction of the study's budget rung <paramref name="rung"/> trains with.</summary>
    public double BudgetFraction(int rung) => Math.Pow(Eta, -(Rungs - 1 - rung));

    public Proposal? Ask(AskContext context)
    {
        var promoted = context.History.Where(t => t.Plan.Origin == "promotion").Select(t => (t.Plan.Rung, Parent: t.Plan.Parents[0])).ToHashSet();
        for (int rung = Rungs - 2; rung >= 0; rung--)
        {
            var complete = context.History.Where(t => t.Plan.Rung == rung && t.State == TrialState.Complete && context.Fitness(t) is not null)
                .OrderBy(t => context.Fitness(t)!.Value).ThenBy(t => t.Number).ToList();
            var top = complete.Take(complete.Count / Eta);
            var next = top.FirstOrDefault(t => !promoted.Contains((rung + 1, t.Number)));
            if (next is not null)
            {
                var candidate = new Candidate(context.GenomeOf(next), next.Spec, next.Key);
                return new Proposal(candidate, "promotion", [next.Number], rung + 1, BudgetFraction(rung + 1));
            }
        }
        return context.RandomProposal() with { BudgetFraction = BudgetFraction(0) };
    }
}
