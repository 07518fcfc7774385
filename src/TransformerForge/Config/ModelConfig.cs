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

    /// <summary>The x-transformers release the model follows (<c>x_transformers_version</c> at the top of its JSON; 0.20 without it).</summary>
    public virtual XTransformersVersion Version { get => XTransformersVersion.V0_20; init => RequireV020(value); }

    /// <summary>The JSON object's first keys: <c>type</c>, and the version when it is not 0.20 (so 0.20 files stay unchanged).</summary>
    protected JsonObject Header()
    {
        var o = new JsonObject { ["type"] = Type };
        if (Version != XTransformersVersion.V0_20) o[XTransformersVersions.Key] = Version.JsonName();
        return o;
    }

    const string Supported140 = "1.40 covers x-transformers' own models; the Feedback Transformer is labml's";

    void RequireV020(XTransformersVersion v)
    {
        if (v != XTransformersVersion.V0_20)
            throw new ConfigException(XTransformersVersions.Key, $"{Type} follows x-transformers 0.20 only ({Supported140})");
    }

    public static readonly string[] Types =
        { "TransformerWrapper", "ContinuousTransformerWrapper", "ViTransformerWrapper", "XTransformer", "Encoder", "Decoder", "CrossAttender", "AttentionLayers", "FeedbackTransformer", TransformerPlusPlusConfig.TypeName };

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

    /// <summary>
    /// A model from its JSON object. The x-transformers version is the object's <c>x_transformers_version</c>, else
    /// <paramref name="version"/> (0.20 unless the caller knows better, e.g. a parity fixture's <c>source</c>).
    /// </summary>
    public static ModelConfig FromJson(JsonElement obj, XTransformersVersion? version = null)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw new ConfigException("", "the model configuration must be a JSON object");
        // Archai's ArchConfig files (Transformer++ architectures) have no type.
        if (ArchaiArchitecture.Matches(obj)) return ArchaiArchitecture.Read(obj);
        var type = obj.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var v = obj.TryGetProperty(XTransformersVersions.Key, out _) ? XTransformersVersions.Read(obj) : version ?? XTransformersVersion.V0_20;
        if (v != XTransformersVersion.V0_20 && type is "FeedbackTransformer")
            throw new ConfigException(XTransformersVersions.Key, $"{type} follows x-transformers 0.20 only ({Supported140})");
        if (type is TransformerPlusPlusConfig.TypeName && obj.TryGetProperty(XTransformersVersions.Key, out _))
            throw new ConfigException(XTransformersVersions.Key, "Transformer++ is Archai's model, not x-transformers': it has no x-transformers version");
        return type switch
        {
            "TransformerWrapper" => TransformerWrapperConfig.FromJson(obj, v),
            "ContinuousTransformerWrapper" => ContinuousTransformerWrapperConfig.FromJson(obj, v),
            "ViTransformerWrapper" => ViTransformerWrapperConfig.FromJson(obj, v),
            "XTransformer" => XTransformerConfig.FromJson(obj, v),
            "FeedbackTransformer" => FeedbackTransformerConfig.FromJson(obj),
            TransformerPlusPlusConfig.TypeName => TransformerPlusPlusConfig.FromJson(obj),
            "Encoder" or "Decoder" or "CrossAttender" or "AttentionLayers" => new AttentionLayersModelConfig(AttentionLayersConfig.FromJson(obj, "", v)),
            _ => throw new ConfigException("type", $"expected one of {string.Join(", ", Types)}, got {(type is null ? "nothing" : $"'{type}'")}"),
        };
    }

    public abstract JsonObject ToJson();

    public string ToJsonString() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    public void Save(string path) => File.WriteAllText(path, ToJsonString());

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
    public override XTransformersVersion Version { get => Layers.Version; init => Layers = Layers with { Version = value }; }

    public override JsonObject ToJson()
    {
        var o = Header();
        foreach (var (k, v) in Layers.ToJson()) o[k] = v?.DeepClone();
        return o;
    }
}
