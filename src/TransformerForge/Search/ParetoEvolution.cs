using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// Multi-objective Pareto evolution after Archai's <c>EvolutionParetoSearch</c>, as a steady state: the first
/// <see cref="InitialRandom"/> trials are random; after that each proposal mutates a random member of the current
/// Pareto front (of all complete trials, over all objectives), crosses two of them, or mixes in a random candidate
/// (Archai's <c>num_random_mix</c>, against local minima), with the given probabilities. The study's result is the front.
/// </summary>
public sealed class ParetoEvolution : ISearchAlgorithm
{
    public const string AlgorithmName = "pareto";

    public ParetoEvolution(int initialRandom = 10, double mutation = 0.5, double crossover = 0.25, double? mutationProbability = null)
    {
        if (initialRandom < 1) throw new SearchException($"pareto: initial random trials must be at least 1, got {initialRandom}");
        if (mutation < 0 || crossover < 0 || mutation + crossover > 1)
            throw new SearchException($"pareto: mutation {mutation} and crossover {crossover} shares must be non-negative and add up to at most 1 (the rest is random)");
        if (mutationProbability is < 0 or > 1) throw new SearchException($"pareto: mutation probability must be in [0, 1], got {mutationProbability}");
        InitialRandom = initialRandom;
        MutationShare = mutation;
        CrossoverShare = crossover;
        MutationProbability = mutationProbability;
    }

    public int InitialRandom { get; }
    public double MutationShare { get; }
    public double CrossoverShare { get; }
    public double? MutationProbability { get; }
    public string Name => AlgorithmName;

    public JsonObject ToJson() => new()
    {
        ["name"] = Name, ["initial_random"] = InitialRandom, ["mutation"] = MutationShare, ["crossover"] = CrossoverShare,
        ["mutation_probability"] = MutationProbability,
    };

    public Proposal? Ask(AskContext context)
    {
        if (context.History.Count < InitialRandom) return context.RandomProposal();
        var front = Pareto.Front(context.History, context.Objectives);
        if (front.Count == 0) return context.RandomProposal();

        double p = MutationProbability ?? RegularizedEvolution.DefaultMutationProbability(context.Candidates.Parameters.Count);
        double u = context.Random.NextDouble();
        if (u < MutationShare)
        {
            var parent = front[context.Random.Next(front.Count)];
            if (context.Candidates.Mutant(context.GenomeOf(parent), p, context.Random, context.Seen) is { } m)
                return new Proposal(m, "mutation", [parent.Number]);
        }
        else if (u < MutationShare + CrossoverShare && front.Count >= 2)
        {
            int i = context.Random.Next(front.Count), j = context.Random.Next(front.Count - 1);
            if (j >= i) j++;
            var (a, b) = (front[i], front[j]);
            if (context.Candidates.Child(context.GenomeOf(a), context.GenomeOf(b), context.Random, context.Seen) is { } c)
                return new Proposal(c, "crossover", [a.Number, b.Number]);
        }
        return context.RandomProposal();
    }
}
