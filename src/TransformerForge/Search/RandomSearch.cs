using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>Random search: each trial an independent uniform draw from the space (valid, within constraints, unseen).
/// Its proposals depend only on the seed and the models already in the study, not on their results.</summary>
public sealed class RandomSearch : ISearchAlgorithm
{
    public const string AlgorithmName = "random";
    public string Name => AlgorithmName;
    public JsonObject ToJson() => new() { ["name"] = Name };
    public Proposal? Ask(AskContext context) => context.RandomProposal();
}
