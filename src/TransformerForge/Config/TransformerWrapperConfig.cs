using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>Token model: embedding, layer stack, norm, logits (x-transformers' <c>TransformerWrapper</c>).</summary>
public sealed record TransformerWrapperConfig : ModelConfig
{
    readonly XTransformersVersion _version;
    readonly AttentionLayersConfig _attnLayers = new();

    public override string Type => "TransformerWrapper";

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

    public int NumTokens { get; init; }
    public int MaxSeqLen { get; init; }
    public AttentionLayersConfig AttnLayers { get => _attnLayers; init => _attnLayers = value with { Version = _version }; }
    public int? EmbDim { get; init; }
    /// <summary>Transformer-XL memory length (0 = no memories returned).</summary>
    public int MaxMemLen { get; init; }
    /// <summary>Enhanced recurrence (Ding et al. 2021): rotate layer memories down by this many layers.</summary>
    public int ShiftMemDown { get; init; }
    public double EmbDropout { get; init; }
    public int? NumMemoryTokens { get; init; }
    public bool TieEmbedding { get; init; }
    /// <summary>Learned absolute positions (<c>use_pos_emb</c> in 0.20, <c>use_abs_pos_emb</c> in 1.40); layers with their own positions need none.</summary>
    public bool UsePosEmb { get; init; } = true;
    /// <summary>l2-normalised token and position embeddings (1.40; FixNorm, Nguyen &amp; Chiang 2018), initialised tiny.</summary>
    public bool L2normEmbed { get; init; }
    /// <summary>No logits head: the model returns its embeddings (1.40's <c>return_only_embed</c>; set for XTransformer's encoder).</summary>
    public bool ReturnOnlyEmbed { get; init; }

    public static readonly OptionTable<TransformerWrapperConfig> Table = new OptionTable<TransformerWrapperConfig>()
        .VersionedBy(c => c.Version)
        .Int("num_tokens", c => c.NumTokens, (c, v) => c with { NumTokens = v })
        .Int("max_seq_len", c => c.MaxSeqLen, (c, v) => c with { MaxSeqLen = v })
        .Nested("attn_layers", (c, e, path) => c with { AttnLayers = AttentionLayersConfig.FromJson(e, path + ".", c.Version) }, c => c.AttnLayers.ToJson())
        .OptInt("emb_dim", c => c.EmbDim, (c, v) => c with { EmbDim = v })
        .Int("max_mem_len", c => c.MaxMemLen, (c, v) => c with { MaxMemLen = v })
        .Int("shift_mem_down", c => c.ShiftMemDown, (c, v) => c with { ShiftMemDown = v })
        .Double("emb_dropout", c => c.EmbDropout, (c, v) => c with { EmbDropout = v })
        .OptInt("num_memory_tokens", c => c.NumMemoryTokens, (c, v) => c with { NumMemoryTokens = v })
        .Bool("tie_embedding", c => c.TieEmbedding, (c, v) => c with { TieEmbedding = v })
        .Bool("use_pos_emb", c => c.UsePosEmb, (c, v) => c with { UsePosEmb = v }).Only(XTransformersVersion.V0_20, renamedTo: "use_abs_pos_emb")
        .Bool("use_abs_pos_emb", c => c.UsePosEmb, (c, v) => c with { UsePosEmb = v }).Only(XTransformersVersion.V1_40, renamedTo: "use_pos_emb")
        .Bool("l2norm_embed", c => c.L2normEmbed, (c, v) => c with { L2normEmbed = v }).Only(XTransformersVersion.V1_40);

    public static TransformerWrapperConfig FromJson(JsonElement obj, XTransformersVersion version)
    {
        Require(obj, "num_tokens", "max_seq_len", "attn_layers");
        var c = Table.Read(obj, new TransformerWrapperConfig { Version = version }, "", "type", XTransformersVersions.Key);
        c.Validate();
        return c;
    }

    public override JsonObject ToJson()
    {
        var o = Header();
        Table.Write(this, new TransformerWrapperConfig { Version = Version }, o, "num_tokens", "max_seq_len", "attn_layers");
        return o;
    }

    public void Validate(string prefix = "")
    {
        if (NumTokens <= 0) throw new ConfigException(prefix + "num_tokens", "must be a positive integer");
        if (MaxSeqLen <= 0) throw new ConfigException(prefix + "max_seq_len", "must be a positive integer");
        if (EmbDim is <= 0) throw new ConfigException(prefix + "emb_dim", "must be a positive integer");
        if (TieEmbedding && EmbDim is { } e && e != AttnLayers.Dim)
            throw new ConfigException(prefix + "tie_embedding", $"needs emb_dim ({e}) equal to the layers' dim ({AttnLayers.Dim}): the logits reuse the embedding table");
        if (MaxMemLen < 0) throw new ConfigException(prefix + "max_mem_len", "must not be negative");
        if (ShiftMemDown < 0) throw new ConfigException(prefix + "shift_mem_down", "must not be negative");
        if (NumMemoryTokens is < 0) throw new ConfigException(prefix + "num_memory_tokens", "must not be negative");
        if (EmbDropout is < 0 or >= 1) throw new ConfigException(prefix + "emb_dropout", "must be in [0, 1)");
        Table.CheckVersion(this, new TransformerWrapperConfig { Version = Version }, Version, prefix);
        if (AttnLayers.Version != Version)
            throw new ConfigException(prefix + XTransformersVersions.Key, $"the layer stack follows {AttnLayers.Version.JsonName()}, the wrapper {Version.JsonName()}");
        AttnLayers.Validate(prefix + "attn_layers.");
    }
}
