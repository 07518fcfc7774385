using System.Text.Json.Nodes;
using TransformerForge.Search;

namespace TransformerForge.Tests.Search;

/// <summary>A space of N integer choices 0..K-1 whose model JSON is the vector itself: for algorithm tests without torch.</summary>
internal sealed class GridSpace : ISearchSpace
{
    public GridSpace(int n, int k)
    {
        Parameters = Enumerable.Range(0, n).Select(i => new SpaceParameter($"x{i}", Enumerable.Range(0, k).Select(v => (JsonNode?)v).ToList())).ToList();
        K = k;
    }

    public int K { get; }
    public string Kind => "grid";
    public IReadOnlyList<SpaceParameter> Parameters { get; }
    public JsonObject Build(Genome g) => new() { ["x"] = new JsonArray(g.Indices.Select(i => (JsonNode?)i).ToArray()) };
    public JsonObject ToJson() => new() { ["space"] = "grid" };

    public static int[] Values(TrialRecord t) => ((JsonArray)t.Spec["x"]!).Select(v => v!.GetValue<int>()).ToArray();
}

/// <summary>
/// Runs an algorithm against a synthetic objective the way a single worker does (ask with the history so far and the
/// trial's seeded generator, evaluate, append), without storage or processes.
/// </summary>
internal static class SyntheticSearch
{
    /// <summary>Evaluates a proposal: the metrics (and state/intermediate values, for hurdles) of its vector at a budget fraction.</summary>
    public delegate (TrialState State, Dictionary<string, double> Metrics, List<IntermediateValue> Intermediate) Evaluator(int[] x, TrialPlan plan);

    public static List<TrialRecord> Run(ISearchAlgorithm algorithm, ISearchSpace space, IReadOnlyList<Objective> objectives, int seed, int trials,
        Evaluator evaluate, HurdlePolicy? hurdles = null, Func<List<TrialRecord>, bool>? stop = null)
    {
        var source = new CandidateSource(space);
        var history = new List<TrialRecord>();
        for (int n = 0; n < trials; n++)
        {
            var context = new AskContext(n, AskContext.RandomFor(seed, n), history, source, objectives);
            Proposal? p;
            try
            {
                p = algorithm.Ask(context);
            }
            catch (SpaceExhaustedException)
            {
                break;
            }
            Assert.NotNull(p);
            var plan = new TrialPlan
            {
                Origin = p!.Origin, Parents = p.Parents, Rung = p.Rung, BudgetFraction = p.BudgetFraction, Seed = seed,
                Hurdles = hurdles?.Thresholds(history, objectives[0]) ?? [],
            };
            var x = p.Candidate.Genome.Indices.ToArray();
            var (state, metrics, intermediate) = evaluate(x, plan);
            history.Add(new TrialRecord
            {
                Id = n + 1, Number = n, State = state, Spec = p.Candidate.Spec, Key = p.Candidate.Key,
                Genome = p.Candidate.Genome.ToJson(space.Parameters), Plan = plan, Metrics = metrics, Intermediate = intermediate,
            });
            if (stop?.Invoke(history) == true) break;
        }
        return history;
    }

    /// <summary>A single-objective evaluator: the metric is <paramref name="f"/>(x), complete.</summary>
    public static Evaluator Simple(string metric, Func<int[], double> f) => (x, _) =>
        (TrialState.Complete, new Dictionary<string, double> { [metric] = f(x) }, []);
}
