using System.Globalization;

namespace TransformerForge.Search;

/// <summary>
/// Turns genomes into candidates the search may train: builds the model JSON, rejects invalid combinations, those over
/// a <see cref="Constraint"/> and those already seen, and draws again. When <see cref="MaxDraws"/> draws in a row are
/// rejected it stops with an error that says why (how many broke which constraint, the closest value seen, the first
/// invalid combinations), so a space that cannot meet its constraints fails at once instead of spinning.
/// </summary>
public sealed class CandidateSource
{
    readonly Dictionary<Genome, (Candidate? Candidate, string? Rejection, string? Kind)> _made = new();
    readonly Dictionary<(string Key, string Metric), double> _measured = new();
    readonly ICandidateMeter? _meter;

    public CandidateSource(ISearchSpace space, IReadOnlyList<Constraint>? constraints = null, ICandidateMeter? meter = null, int maxDraws = 1000)
    {
        Space = space;
        Constraints = constraints ?? [];
        if (Constraints.Count > 0 && meter is null) throw new ArgumentException("constraints need a meter", nameof(meter));
        _meter = meter;
        MaxDraws = maxDraws > 0 ? maxDraws : throw new ArgumentOutOfRangeException(nameof(maxDraws));
    }

    public ISearchSpace Space { get; }
    public IReadOnlyList<SpaceParameter> Parameters => Space.Parameters;
    public IReadOnlyList<Constraint> Constraints { get; }
    public int MaxDraws { get; }

    /// <summary>The candidate of <paramref name="genome"/>, or null with the reason it is rejected (invalid, or over a constraint).</summary>
    public Candidate? TryMake(Genome genome, out string? rejection) => TryMake(genome, out rejection, out _);

    Candidate? TryMake(Genome genome, out string? rejection, out string? kind)
    {
        if (!_made.TryGetValue(genome, out var made))
        {
            made = Make(genome);
            _made[genome] = made;
        }
        rejection = made.Rejection;
        kind = made.Kind;
        return made.Candidate;
    }

    (Candidate?, string?, string?) Make(Genome genome)
    {
        Candidate candidate;
        try
        {
            candidate = Candidate.Of(genome, Space.Build(genome));
        }
        catch (InvalidCandidateException e)
        {
            return (null, e.Message, "invalid");
        }
        foreach (var c in Constraints)
        {
            double value;
            try
            {
                value = Measure(candidate, c.Metric);
            }
            catch (InvalidCandidateException e)
            {
                return (null, e.Message, "invalid");
            }
            if (!c.Allows(value)) return (null, $"{c.Metric} {Format(value)} is over {Format(c.Max)}", c.Metric);
        }
        return (candidate, null, null);
    }

    /// <summary>A constraint metric of a candidate (cached by model key).</summary>
    public double Measure(Candidate candidate, string metric)
    {
        if (_meter is null) throw new InvalidOperationException("no meter");
        if (!_measured.TryGetValue((candidate.Key, metric), out var v)) _measured[(candidate.Key, metric)] = v = _meter.Measure(candidate, metric);
        return v;
    }

    /// <summary>A uniformly drawn valid candidate not in <paramref name="seen"/>.</summary>
    public Candidate Random(Random random, IReadOnlySet<string> seen)
    {
        var tally = new RejectionTally();
        for (int draw = 0; draw < MaxDraws; draw++)
        {
            var genome = SpaceOperators.Sample(Parameters, random);
            if (Accept(genome, seen, tally) is { } c) return c;
        }
        throw tally.Failure(this, $"{MaxDraws} random draws in a row");
    }

    /// <summary>A valid unseen mutant of <paramref name="parent"/> within <paramref name="tries"/> mutations, else null.</summary>
    public Candidate? Mutant(Genome parent, double probability, Random random, IReadOnlySet<string> seen, int tries = 100)
    {
        for (int i = 0; i < tries; i++)
            if (Accept(SpaceOperators.Mutate(Parameters, parent, probability, random), seen, null) is { } c) return c;
        return null;
    }

    /// <summary>A valid unseen uniform crossover of two parents within <paramref name="tries"/> draws, else null.</summary>
    public Candidate? Child(Genome a, Genome b, Random random, IReadOnlySet<string> seen, int tries = 100)
    {
        for (int i = 0; i < tries; i++)
            if (Accept(SpaceOperators.Crossover(Parameters, a, b, random), seen, null) is { } c) return c;
        return null;
    }

    Candidate? Accept(Genome genome, IReadOnlySet<string> seen, RejectionTally? tally)
    {
        var c = TryMake(genome, out var rejection, out var kind);
        if (c is null)
        {
            tally?.Add(kind!, rejection!);
            return null;
        }
        if (seen.Contains(c.Key))
        {
            tally?.Add("seen", "already tried");
            return null;
        }
        return c;
    }

    static string Format(double v) => Math.Abs(v) >= 1e4 ? v.ToString("N0", CultureInfo.InvariantCulture) : v.ToString("G4", CultureInfo.InvariantCulture);

    /// <summary>Why draws were rejected, for the error that ends a hopeless search.</summary>
    sealed class RejectionTally
    {
        readonly Dictionary<string, int> _counts = new();
        readonly List<string> _examples = new();

        public void Add(string kind, string message)
        {
            _counts[kind] = _counts.GetValueOrDefault(kind) + 1;
            if (kind == "invalid" && _examples.Count < 3 && !_examples.Contains(message)) _examples.Add(message);
        }

        public Exception Failure(CandidateSource source, string what)
        {
            if (_counts.Count == 1 && _counts.ContainsKey("seen"))
                return new SpaceExhaustedException($"no candidate left to try: {what} gave only models already tried (the space has {SearchSpaces.Size(source.Space):G4} genomes)");
            var parts = new List<string>();
            foreach (var c in source.Constraints)
                if (_counts.TryGetValue(c.Metric, out var n))
                {
                    var closest = source._measured.Where(m => m.Key.Metric == c.Metric).Select(m => m.Value).DefaultIfEmpty(double.NaN).Min();
                    parts.Add($"{n} over {c} (the smallest seen is {Format(closest)})");
                }
            if (_counts.TryGetValue("invalid", out var invalid)) parts.Add($"{invalid} invalid ({string.Join("; ", _examples)})");
            if (_counts.TryGetValue("seen", out var seen)) parts.Add($"{seen} already tried");
            return new SearchException($"the space cannot meet its constraints: {what} were rejected: {string.Join(", ", parts)}");
        }
    }
}

/// <summary>Every candidate the space can make (within its constraints) has been tried: the search is complete.</summary>
public sealed class SpaceExhaustedException(string message) : Exception(message);
