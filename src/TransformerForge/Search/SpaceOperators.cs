namespace TransformerForge.Search;

/// <summary>
/// The evolutionary operators over any space's parameters: a uniform random sample; a mutation that re-draws each
/// parameter with probability p (as Archai's <c>ConfigSearchSpace.mutate</c>), always to another of its values, and
/// changes one parameter at random when the draws changed none, so a mutant always differs from its parent; and a
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
        var indices = parent.Indices.ToArray();
        bool changed = false;
        for (int i = 0; i < parameters.Count; i++)
            if (parameters[i].Choices.Count > 1 && random.NextDouble() < probability)
            {
                indices[i] = Other(parameters[i], indices[i], random);
                changed = true;
            }
        var mutable = Enumerable.Range(0, parameters.Count).Where(i => parameters[i].Choices.Count > 1).ToList();
        if (!changed && mutable.Count > 0)
        {
            int i = mutable[random.Next(mutable.Count)];
            indices[i] = Other(parameters[i], indices[i], random);
        }
        return new Genome(indices);
    }

    /// <summary>A choice other than <paramref name="current"/>, uniformly.</summary>
    static int Other(SpaceParameter p, int current, Random random)
    {
        int v = random.Next(p.Choices.Count - 1);
        return v >= current ? v + 1 : v;
    }

    public static Genome Crossover(IReadOnlyList<SpaceParameter> parameters, Genome a, Genome b, Random random)
    {
        var indices = new int[parameters.Count];
        for (int i = 0; i < parameters.Count; i++) indices[i] = random.NextDouble() < 0.5 ? a[i] : b[i];
        return new Genome(indices);
    }
}
