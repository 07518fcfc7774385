using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>Token model: embedding, layer stack, norm, logits (x-transformers' <c>TransformerWrapper</c>).</summary>
public sealed record TransformerWrapperConfig : ModelConfig
{
    public override string Type => "TransformerWrapper";
    public int NumTokens { get; init; }
    public int MaxSeqLen { get; init; }
    public AttentionLayersConfig AttnLayers { get; init; } = new();
    public int? EmbDim { get; init; }
    /// <summary>Transformer-XL memory length (0 = no memories returned).</summary>
    public int MaxMemLen { get; init; }
    /// <summary>Enhanced recurrence (Ding et al. 2021): rotate layer memories down by this many layers.</summary>
    public int ShiftMemDown { get; init; }
    public double EmbDropout { get; init; }
    public int? NumMemoryTokens { get; init; }
    public bool TieEmbedding { get; init; }
    public bool UsePosEmb { get; init; } = true;

    public static readonly OptionTable<TransformerWrapperConfig> Table = new OptionTable<TransformerWrapperConfig>()
        .Int("num_tokens", c => c.NumTokens, (c, v) => c with { NumTokens = v })
        .Int("max_seq_len", c => c.MaxSeqLen, (c, v) => c with { MaxSeqLen = v })
        .Nested("attn_layers", (c, e, path) => c with { AttnLayers = AttentionLayersConfig.FromJson(e, path + ".") }, c => c.AttnLayers.ToJson())
        .OptInt("emb_dim", c => c.EmbDim, (c, v) => c with { EmbDim = v })
        .Int("max_mem_len", c => c.MaxMemLen, (c, v) => c with { MaxMemLen = v })
        .Int("shift_mem_down", c => c.ShiftMemDown, (c, v) => c with { ShiftMemDown = v })
        .Double("emb_dropout", c => c.EmbDropout, (c, v) => c with { EmbDropout = v })
        .OptInt("num_memory_tokens", c => c.NumMemoryTokens, (c, v) => c with { NumMemoryTokens = v })
        .Bool("tie_embedding", c => c.TieEmbedding, (c, v) => c with { TieEmbedding = v })
        .Bool("use_pos_emb", c => c.UsePosEmb, (c, v) => c with { UsePosEmb = v });

    public static new TransformerWrapperConfig FromJson(JsonElement obj)
    {
        Require(obj, "num_tokens", "max_seq_len", "attn_layers");
        var c = Table.Read(obj, new TransformerWrapperConfig(), "", "type");
        c.Validate();
        return c;
    }

    public override JsonObject ToJson()
    {
        var o = new JsonObject { ["type"] = Type };
        Table.Write(this, new TransformerWrapperConfig(), o, "num_tokens", "max_seq_len", "attn_layers");
        return o;
    }

    public void Validate(string prefix = "")
    {
        if (NumTokens <= 0) throw new ConfigException(prefix + "num_tokens", "must be a positive integer");
        if (MaxSeqLen <= 0) throw new ConfigException(prefix + "max_seq_len", "must be a positive integer");
        if (EmbDim is <= 0) throw new ConfigException(prefix + "emb_dim", "must be a positive integer");
        if (MaxMemLen < 0) throw new ConfigException(prefix + "max_mem_len", "must not be negative");
        if (ShiftMemDown < 0) throw new ConfigException(prefix + "shift_mem_down", "must not be negative");
        if (NumMemoryTokens is < 0) throw new ConfigException(prefix + "num_memory_tokens", "must not be negative");
        if (EmbDropout is < 0 or >= 1) throw new ConfigException(prefix + "emb_dropout", "must be in [0, 1)");
        AttnLayers.Validate(prefix + "attn_layers.");
    }
}
