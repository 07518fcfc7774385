using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>Vision Transformer (Dosovitskiy et al. 2020): patches in, class logits or embeddings out.</summary>
public sealed record ViTransformerWrapperConfig : ModelConfig
{
    readonly XTransformersVersion _version;
    readonly AttentionLayersConfig _attnLayers = new() { Type = LayerStackType.Encoder };

    public override string Type => "ViTransformerWrapper";

    /// <summary>The x-transformers release the model follows (<c>x_transformers_version</c>); the layer stack carries it too.</summary>
    public override XTransformersVersion Version
    {
        get => _version;
        init
        {
            _version = value;
            _attnLayers = _attnLayers with { Version = value };
        }
    }

    public int ImageSize { get; init; }
    public int PatchSize { get; init; }
    public AttentionLayersConfig AttnLayers { get => _attnLayers; init => _attnLayers = value with { Version = _version }; }
    public int? NumClasses { get; init; }
    public double Dropout { get; init; }
    public double EmbDropout { get; init; }

    public static readonly OptionTable<ViTransformerWrapperConfig> Table = new OptionTable<ViTransformerWrapperConfig>()
        .VersionedBy(c => c.Version)
        .Int("image_size", c => c.ImageSize, (c, v) => c with { ImageSize = v })
        .Int("patch_size", c => c.PatchSize, (c, v) => c with { PatchSize = v })
        .Nested("attn_layers", (c, e, path) => c with { AttnLayers = AttentionLayersConfig.FromJson(e, path + ".", c.Version) }, c => c.AttnLayers.ToJson())
        .OptInt("num_classes", c => c.NumClasses, (c, v) => c with { NumClasses = v })
        .Double("dropout", c => c.Dropout, (c, v) => c with { Dropout = v }).Only(XTransformersVersion.V0_20)
        .Double("emb_dropout", c => c.EmbDropout, (c, v) => c with { EmbDropout = v });

    public static ViTransformerWrapperConfig FromJson(JsonElement obj, XTransformersVersion version = XTransformersVersion.V0_20)
    {
        Require(obj, "image_size", "patch_size", "attn_layers");
        var c = Table.Read(obj, new ViTransformerWrapperConfig { Version = version }, "", "type", XTransformersVersions.Key);
        if (c.AttnLayers.Type != LayerStackType.Encoder) throw new ConfigException("attn_layers.type", "attention layers must be an Encoder");
        if (c.PatchSize <= 0 || c.ImageSize <= 0) throw new ConfigException("patch_size", "image_size and patch_size must be positive");
        if (c.ImageSize % c.PatchSize != 0) throw new ConfigException("patch_size", "image dimensions must be divisible by the patch size");
        if (c.NumClasses is <= 0) throw new ConfigException("num_classes", "must be a positive integer");
        if (c.Dropout is < 0 or >= 1) throw new ConfigException("dropout", "must be in [0, 1)");
        if (c.EmbDropout is < 0 or >= 1) throw new ConfigException("emb_dropout", "must be in [0, 1)");
        return c;
    }

    public override JsonObject ToJson()
    {
        var o = Header();
        Table.Write(this, new ViTransformerWrapperConfig { Version = Version }, o, "image_size", "patch_size", "attn_layers");
        return o;
    }
}
