using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>The algorithms by name, and reading one back from a study's stored settings.</summary>
public static class SearchAlgorithms
{
    public static IReadOnlyList<string> Names { get; } =
        [RandomSearch.AlgorithmName, RegularizedEvolution.AlgorithmName, ParetoEvolution.AlgorithmName, SuccessiveHalving.AlgorithmName];

    public static ISearchAlgorithm FromJson(JsonObject o)
    {
        var name = o["name"]?.GetValue<string>();
        T? Get<T>(string key) where T : struct => o[key] is JsonNode n ? n.GetValue<T>() : null;
        return name switch
        {
            RandomSearch.AlgorithmName => new RandomSearch(),
            RegularizedEvolution.AlgorithmName => new RegularizedEvolution(Get<int>("population") ?? 20, Get<int>("sample_size") ?? 5,
                Get<double>("mutation_probability"), Get<double>("crossover_probability") ?? 0),
            ParetoEvolution.AlgorithmName => new ParetoEvolution(Get<int>("initial_random") ?? 10, Get<double>("mutation") ?? 0.5,
                Get<double>("crossover") ?? 0.25, Get<double>("mutation_probability")),
            SuccessiveHalving.AlgorithmName => new SuccessiveHalving(Get<int>("eta") ?? 3, Get<int>("rungs") ?? 3),
            _ => throw new SearchException($"unknown algorithm '{name}'; known: {string.Join(", ", Names)}"),
        };
    }
}
