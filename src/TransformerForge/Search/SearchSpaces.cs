using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>Reads a space file: its <c>space</c> key names the kind (x-transformers or Transformer++).</summary>
public static class SearchSpaces
{
    public static IReadOnlyList<string> Kinds { get; } = [XTransformersSpace.KindName, TfppSpace.KindName];

    public static ISearchSpace Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"space file '{path}' does not exist", path);
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (SearchException e)
        {
            throw new SearchException($"{path}: {e.Message}");
        }
    }

    public static ISearchSpace Parse(string json)
    {
        JsonNode? node;
        try
        {
            node = IO.StrictJson.ParseNode(json, lenient: true);
        }
        catch (JsonException e)
        {
            throw new SearchException($"the space is not valid JSON: {e.Message}");
        }
        return FromJson(node as JsonObject ?? throw new SearchException("the space must be a JSON object"));
    }

    public static ISearchSpace FromJson(JsonObject definition)
    {
        var kind = definition["space"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
        return kind switch
        {
            XTransformersSpace.KindName => XTransformersSpace.Parse(definition),
            TfppSpace.KindName or "tfpp" => TfppSpace.Parse(definition),
            _ => throw new SearchException($"space: 'space' must be one of {string.Join(", ", Kinds)}, got {(kind is null ? "nothing" : $"'{kind}'")}"),
        };
    }

    /// <summary>Whether the space leaves the vocabulary size or window length to the data.</summary>
    public static bool NeedsData(ISearchSpace space) => space switch
    {
        XTransformersSpace x => x.NeedsData,
        TfppSpace t => t.NeedsData,
        _ => false,
    };

    /// <summary>The space with the vocabulary size and window length the data needs filled in where it leaves them out.</summary>
    public static ISearchSpace WithData(ISearchSpace space, int vocabSize, int seqLen) => space switch
    {
        XTransformersSpace x => x.WithData(vocabSize, seqLen),
        TfppSpace t => t.WithData(vocabSize, seqLen),
        _ => space,
    };

    /// <summary>How many distinct genomes the space has (a double: spaces can be astronomically large).</summary>
    public static double Size(ISearchSpace space) => space.Parameters.Aggregate(1.0, (n, p) => n * p.Choices.Count);
}
