using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// A set of models to search: named parameters with their choices (<see cref="Parameters"/>) and the model JSON that a
/// genome stands for (<see cref="Build"/>), exactly what <c>tforge train --config</c> takes.
/// </summary>
public interface ISearchSpace
{
    /// <summary>The <c>space</c> value of the space file (<c>x-transformers</c>, <c>transformer++</c>).</summary>
    string Kind { get; }

    IReadOnlyList<SpaceParameter> Parameters { get; }

    /// <summary>The model JSON of <paramref name="genome"/>, in canonical form (same model, same text); throws
    /// <see cref="InvalidCandidateException"/> when the combination is not a valid model.</summary>
    JsonObject Build(Genome genome);

    /// <summary>The space definition, as the space file writes it (resolved: nothing left to fill in).</summary>
    JsonObject ToJson();
}
