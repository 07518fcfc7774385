using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// A search algorithm as ask/tell with no state of its own: <see cref="Ask"/> proposes the next trial from the study's
/// trials so far (the "tell" is a trial finishing in storage). Everything an algorithm knows is in the history, so any
/// number of workers, restarted at any time, continue the same search; with one worker and the same seed the sequence
/// of proposals is the same on every run.
/// </summary>
public interface ISearchAlgorithm
{
    string Name { get; }

    /// <summary>The algorithm and its settings, as the study stores them.</summary>
    JsonObject ToJson();

    /// <summary>The next trial to run, or null when nothing can be proposed until running trials finish.</summary>
    Proposal? Ask(AskContext context);
}

/// <summary>What an algorithm proposes: a candidate, where it came from and how much of the budget it gets.</summary>
public sealed record Proposal(Candidate Candidate, string Origin, IReadOnlyList<int> Parents, int Rung = 0, double BudgetFraction = 1)
{
    public static Proposal Random(Candidate c) => new(c, "random", []);
}

/// <summary>
/// What an algorithm sees when asked for trial <see cref="Number"/>: the trials so far, a random generator seeded by
/// (study seed, trial number), the candidate source (space, constraints, rejection) and the objectives.
/// </summary>
public sealed class AskContext
{
    readonly Dictionary<long, Genome> _genomes = new();

    public AskContext(int number, Random random, IReadOnlyList<TrialRecord> history, CandidateSource candidates, IReadOnlyList<Objective> objectives)
    {
        if (objectives.Count == 0) throw new ArgumentException("a search needs at least one objective", nameof(objectives));
        Number = number;
        Random = random;
        History = history;
        Candidates = candidates;
        Objectives = objectives;
        Seen = history.Select(t => t.Key).ToHashSet();
    }

    public int Number { get; }
    public Random Random { get; }
    public IReadOnlyList<TrialRecord> History { get; }
    public CandidateSource Candidates { get; }
    public IReadOnlyList<Objective> Objectives { get; }
    public Objective Primary => Objectives[0];
    /// <summary>Keys of every model already in the study (any state): not proposed again.</summary>
    public IReadOnlySet<string> Seen { get; }

    public Genome GenomeOf(TrialRecord trial)
    {
        if (!_genomes.TryGetValue(trial.Id, out var g)) _genomes[trial.Id] = g = Genome.FromJson(trial.Genome, Candidates.Parameters);
        return g;
    }

    /// <summary>The primary metric turned so that lower is better, for complete and pruned trials that have it; else null.</summary>
    public double? Fitness(TrialRecord trial) =>
        trial.State is TrialState.Complete or TrialState.Pruned && trial.Metric(Primary.Metric) is { } v && double.IsFinite(v) ? Primary.Loss(v) : null;

    /// <summary>A fresh random candidate (the fallback of every algorithm).</summary>
    public Proposal RandomProposal() => Proposal.Random(Candidates.Random(Random, Seen));

    /// <summary>The random generator of trial <paramref name="number"/> in a study seeded <paramref name="seed"/> (SplitMix64 of both).</summary>
    public static Random RandomFor(int seed, int number)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)number) + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return new Random((int)(z & 0x7FFFFFFF));
    }
}
