using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// One decision of a search space: a name and the JSON values it may take. <see cref="When"/> makes it matter only
/// while other parameters hold one of the listed values (e.g. a convolution's kernel size only with the convolution on);
/// an inactive parameter leaves the model as it would be without it.
/// </summary>
public sealed record SpaceParameter(string Name, IReadOnlyList<JsonNode?> Choices, IReadOnlyDictionary<string, IReadOnlyList<JsonNode?>>? When = null)
{
    /// <summary>The index of <paramref name="value"/> among the choices (JSON equality), or -1.</summary>
    public int IndexOf(JsonNode? value)
    {
        for (int i = 0; i < Choices.Count; i++)
            if (JsonNode.DeepEquals(Choices[i], value)) return i;
        return -1;
    }
}
