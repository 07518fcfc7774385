using System.Text.Json;
using TransformerForge.IO;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>
/// A whole model as x-transformers' constructor call written as JSON: <c>type</c> is the Python class and the other
/// keys its keyword arguments (<c>attn_layers</c> nested the same way). <see cref="Parse"/> and <see cref="ToJson"/>
/// are exact inverses on the options a model has.
/// </summary>
public abstract record ModelConfig
{
    public abstract string Type { get; }

    public static readonly string[] Types =
        { "TransformerWrapper", "ContinuousTransformerWrapper", "ViTransformerWrapper", "XTransformer", "Encoder", "Decoder", "CrossAttender", "AttentionLayers", "FeedbackTransformer" };

    /// <summary>Parses a configuration (comments and trailing commas allowed); any defect is a <see cref="ConfigException"/> naming the key.</summary>
    public static ModelConfig Parse(string json) => Parse(() => StrictJson.Parse(json, lenient: true));

    /// <summary>Parses the UTF-8 bytes of a configuration.</summary>
    public static ModelConfig Parse(ReadOnlyMemory<byte> utf8) => Parse(() => StrictJson.Parse(utf8, lenient: true));

    static ModelConfig Parse(Func<JsonDocument> parse)
    {
        JsonDocument doc;
        try
        {
            doc = parse();
        }
        catch (StrictJsonException e)
        {
            throw new ConfigException(e.Key, e.Problem);
        }
        using (doc) return FromJson(doc.RootElement);
    }

    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"model configuration '{path}' does not exist", path);
        try
        {
            return Parse(File.ReadAllBytes(path));
        }
        catch (ConfigException e)
        {
            throw e.InFile(path);
        }
    }

    public static ModelConfig FromJson(JsonElement obj)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw new ConfigException("", "the model configuration must be a JSON object");
        var type = obj.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        return type switch
        {
            "TransformerWrapper" => TransformerWrapperConfig.FromJson(obj),
            "ContinuousTransformerWrapper" => ContinuousTransformerWrapperConfig.FromJson(obj),
            "ViTransformerWrapper" => ViTransformerWrapperConfig.FromJson(obj),
            "XTransformer" => XTransformerConfig.FromJson(obj),
            "FeedbackTransformer" => FeedbackTransformerConfig.FromJson(obj),
            "Encoder" or "Decoder" or "CrossAttender" or "AttentionLayers" => new AttentionLayersModelConfig(AttentionLayersConfig.FromJson(obj, "")),
            _ => throw new ConfigException("type", $"expected one of {string.Join(", ", Types)}, got {(type is null ? "nothing" : $"'{type}'")}"),
        };
    }

    public abstract JsonObject ToJson();

    public string ToJsonString() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    public void Save(string path) => File.WriteAllText(path, ToJsonString());

    protected static AttentionLayersConfig ReadLayers(JsonElement obj, string key = "attn_layers")
    {
        if (!obj.TryGetProperty(key, out var layers)) throw new ConfigException(key, "is required");
        return AttentionLayersConfig.FromJson(layers, key + ".");
    }

    protected static void Require(JsonElement obj, params string[] keys)
    {
        foreach (var k in keys)
            if (!obj.TryGetProperty(k, out _)) throw new ConfigException(k, "is required");
    }
}

/// <summary>A bare layer stack as the model (x-transformers' <c>Encoder</c>, <c>Decoder</c>, <c>CrossAttender</c> used directly).</summary>
public sealed record AttentionLayersModelConfig(AttentionLayersConfig Layers) : ModelConfig
{
    public override string Type => Layers.Type.JsonName();
    public override JsonObject ToJson() => Layers.ToJson();
}
