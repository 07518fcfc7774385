namespace TransformerForge.Search;

/// <summary>
/// The evolutionary operators over any space's parameters: a uniform random sample, a mutation that re-draws each
/// parameter with probability p (Archai's <c>ConfigSearchSpace.mutate</c>; the value drawn may be the same), and a
/// uniform crossover taking each parameter from either parent with probability ½. All draws come from the
/// <see cref="Random"/> passed in, so the same seed gives the same genomes.
/// </summary>
public static class SpaceOperators
{
    public static Genome Sample(IReadOnlyList<SpaceParameter> parameters, Random random) =>
        new(parameters.Select(p => random.Next(p.Choices.Count)).ToArray());

    public static Genome Mutate(IReadOnlyList<SpaceParameter> parameters, Genome parent, double probability, Random random)
    {
        if (probability is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(probability), "must be in [0, 1]");
        var indices = new int[parameters.Count];
        for (int i = 0; i < parameters.Count; i++)
            indices[i] = random.NextDouble() < probability ? random.Next(parameters[i].Choices.Count) : parent[i];
        return new Genome(indices);
    }

    public static Genome Crossover(IReadOnlyList<SpaceParameter> parameters, Genome a, Genome b, Random random)
    {
        var indices = new int[parameters.Count];
        for (int i = 0; i < parameters.Count; i++) indices[i] = random.NextDouble() < 0.5 ? a[i] : b[i];
        return new Genome(indices);
    }
}
