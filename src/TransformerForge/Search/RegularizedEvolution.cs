using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// Regularized (aging) evolution, Real et al. 2019, the algorithm Primer's search used (So et al. 2021), run as a
/// steady state: the first <see cref="Population"/> trials are random; after that the population is the
/// <see cref="Population"/> most recent finished trials (older ones have aged out, however good they were), a
/// tournament of <see cref="SampleSize"/> of them picks the fittest as parent, and the child is its mutation
/// (optionally a crossover with a second tournament winner first). Failed trials never become parents. Primer's
/// hurdles, which stop weak candidates early, are set on the study (<see cref="HurdlePolicy"/>).
/// </summary>
public sealed class RegularizedEvolution : ISearchAlgorithm
{
    public const string AlgorithmName = "evolution";

    public RegularizedEvolution(int population = 20, int sampleSize = 5, double? mutationProbability = null, double crossoverProbability = 0)
    {
        if (population < 2) throw new SearchException($"evolution: population must be at least 2, got {population}");
        if (sampleSize < 1 || sampleSize > population) throw new SearchException($"evolution: sample size must be in [1, population {population}], got {sampleSize}");
        if (mutationProbability is < 0 or > 1) throw new SearchException($"evolution: mutation probability must be in [0, 1], got {mutationProbability}");
        if (crossoverProbability is < 0 or > 1) throw new SearchException($"evolution: crossover probability must be in [0, 1], got {crossoverProbability}");
        Population = population;
        SampleSize = sampleSize;
        MutationProbability = mutationProbability;
        CrossoverProbability = crossoverProbability;
    }

    public int Population { get; }
    public int SampleSize { get; }
    /// <summary>Chance that each parameter is re-drawn; null: min(0.3, 1 / parameters), one or two changes per child.</summary>
    public double? MutationProbability { get; }
    public double CrossoverProbability { get; }
    public string Name => AlgorithmName;

    public JsonObject ToJson() => new()
    {
        ["name"] = Name, ["population"] = Population, ["sample_size"] = SampleSize,
        ["mutation_probability"] = MutationProbability, ["crossover_probability"] = CrossoverProbability,
    };

    public static double DefaultMutationProbability(int parameters) => Math.Min(0.3, 1.0 / Math.Max(1, parameters));

    public Proposal? Ask(AskContext context)
    {
        if (context.History.Count < Population) return context.RandomProposal();
        var population = context.History.Where(t => context.Fitness(t) is not null).OrderBy(t => t.Number).TakeLast(Population).ToList();
        if (population.Count == 0) return context.RandomProposal();

        double p = MutationProbability ?? DefaultMutationProbability(context.Candidates.Parameters.Count);
        var parent = Tournament(context, population);
        var parents = new List<int> { parent.Number };
        var genome = context.GenomeOf(parent);
        string origin = "mutation";
        if (CrossoverProbability > 0 && population.Count > 1 && context.Random.NextDouble() < CrossoverProbability)
        {
            var other = Tournament(context, population);
            if (other.Number != parent.Number)
            {
                var child = context.Candidates.Child(genome, context.GenomeOf(other), context.Random, context.Seen);
                if (child is not null)
                {
                    genome = child.Genome;
                    parents.Add(other.Number);
                    origin = "crossover+mutation";
                }
            }
        }
        var mutant = context.Candidates.Mutant(genome, p, context.Random, context.Seen);
        return mutant is null ? context.RandomProposal() : new Proposal(mutant, origin, parents);
    }

    /// <summary>The fittest of <see cref="SampleSize"/> members drawn without replacement (ties: the older).</summary>
    TrialRecord Tournament(AskContext context, IReadOnlyList<TrialRecord> population)
    {
        var pool = population.ToList();
        TrialRecord? best = null;
        for (int i = 0; i < Math.Min(SampleSize, population.Count); i++)
        {
            int k = context.Random.Next(pool.Count);
            var t = pool[k];
            pool.RemoveAt(k);
            if (best is null || context.Fitness(t)!.Value < context.Fitness(best)!.Value
                || context.Fitness(t)!.Value == context.Fitness(best)!.Value && t.Number < best.Number) best = t;
        }
        return best!;
    }
}
