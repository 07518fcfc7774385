using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>Vectors in, vectors out (x-transformers' <c>ContinuousTransformerWrapper</c>).</summary>
public sealed record ContinuousTransformerWrapperConfig : ModelConfig
{
    readonly XTransformersVersion _version;
    readonly AttentionLayersConfig _attnLayers = new();

    public override string Type => "ContinuousTransformerWrapper";

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

    public int MaxSeqLen { get; init; }
    public AttentionLayersConfig AttnLayers { get => _attnLayers; init => _attnLayers = value with { Version = _version }; }
    public int? DimIn { get; init; }
    public int? DimOut { get; init; }
    public int? EmbDim { get; init; }
    public double EmbDropout { get; init; }
    public bool UsePosEmb { get; init; } = true;

    public static readonly OptionTable<ContinuousTransformerWrapperConfig> Table = new OptionTable<ContinuousTransformerWrapperConfig>()
        .VersionedBy(c => c.Version)
        .Int("max_seq_len", c => c.MaxSeqLen, (c, v) => c with { MaxSeqLen = v })
        .Nested("attn_layers", (c, e, path) => c with { AttnLayers = AttentionLayersConfig.FromJson(e, path + ".", c.Version) }, c => c.AttnLayers.ToJson())
        .OptInt("dim_in", c => c.DimIn, (c, v) => c with { DimIn = v })
        .OptInt("dim_out", c => c.DimOut, (c, v) => c with { DimOut = v })
        .OptInt("emb_dim", c => c.EmbDim, (c, v) => c with { EmbDim = v })
        .Double("emb_dropout", c => c.EmbDropout, (c, v) => c with { EmbDropout = v })
        .Bool("use_pos_emb", c => c.UsePosEmb, (c, v) => c with { UsePosEmb = v }).Only(XTransformersVersion.V0_20, renamedTo: "use_abs_pos_emb")
        .Bool("use_abs_pos_emb", c => c.UsePosEmb, (c, v) => c with { UsePosEmb = v }).Only(XTransformersVersion.V1_40, renamedTo: "use_pos_emb");

    public static ContinuousTransformerWrapperConfig FromJson(JsonElement obj, XTransformersVersion version = XTransformersVersion.V0_20)
    {
        Require(obj, "max_seq_len", "attn_layers");
        var c = Table.Read(obj, new ContinuousTransformerWrapperConfig { Version = version }, "", "type", XTransformersVersions.Key);
        if (c.MaxSeqLen <= 0) throw new ConfigException("max_seq_len", "must be a positive integer");
        if (c.DimIn is <= 0) throw new ConfigException("dim_in", "must be a positive integer");
        if (c.DimOut is <= 0) throw new ConfigException("dim_out", "must be a positive integer");
        return c;
    }

    public override JsonObject ToJson()
    {
        var o = Header();
        Table.Write(this, new ContinuousTransformerWrapperConfig { Version = Version }, o, "max_seq_len", "attn_layers");
        return o;
    }
}
