using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>
/// Feedback Transformer language model (Fan et al. 2020): every layer attends to one memory built from all layers'
/// outputs at earlier steps. <c>shared_kv</c> selects the variant whose keys and values are computed once per step
/// from that memory and shared by the layers. Not an x-transformers model; the keys follow its naming style.
/// </summary>
public sealed record FeedbackTransformerConfig : ModelConfig
{
    public override string Type => "FeedbackTransformer";
    public int NumTokens { get; init; }
    public int Dim { get; init; }
    public int Depth { get; init; }
    public int Heads { get; init; } = 8;
    /// <summary>Feed-forward hidden width; defaults to 4·dim. Its JSON key keeps labml's name, <c>d_ff</c>.</summary>
    public int? FfInnerDim { get; init; }
    public double Dropout { get; init; }
    public bool SharedKv { get; init; }
    /// <summary>Longest sequence (memory) the model accepts.</summary>
    public int MaxSeqLen { get; init; } = 4096;

    public int FeedForwardWidth => FfInnerDim ?? 4 * Dim;

    public static readonly OptionTable<FeedbackTransformerConfig> Table = new OptionTable<FeedbackTransformerConfig>()
        .Int("num_tokens", c => c.NumTokens, (c, v) => c with { NumTokens = v })
        .Int("dim", c => c.Dim, (c, v) => c with { Dim = v })
        .Int("depth", c => c.Depth, (c, v) => c with { Depth = v })
        .Int("heads", c => c.Heads, (c, v) => c with { Heads = v })
        .OptInt("d_ff", c => c.FfInnerDim, (c, v) => c with { FfInnerDim = v })
        .Double("dropout", c => c.Dropout, (c, v) => c with { Dropout = v })
        .Bool("shared_kv", c => c.SharedKv, (c, v) => c with { SharedKv = v })
        .Int("max_seq_len", c => c.MaxSeqLen, (c, v) => c with { MaxSeqLen = v });

    public static FeedbackTransformerConfig FromJson(JsonElement obj)
    {
        Require(obj, "num_tokens", "dim", "depth");
        var c = Table.Read(obj, new FeedbackTransformerConfig(), "", "type");
        c.Validate();
        return c;
    }

    public override JsonObject ToJson()
    {
        var o = new JsonObject { ["type"] = Type };
        Table.Write(this, new FeedbackTransformerConfig(), o, "num_tokens", "dim", "depth");
        return o;
    }

    public void Validate()
    {
        if (NumTokens <= 0) throw new ConfigException("num_tokens", "must be a positive integer");
        if (Dim <= 0) throw new ConfigException("dim", "must be a positive integer");
        if (Depth <= 0) throw new ConfigException("depth", "must be a positive integer");
        if (Heads <= 0 || Dim % Heads != 0) throw new ConfigException("heads", $"must divide dim ({Dim})");
        if (FfInnerDim is <= 0) throw new ConfigException("d_ff", "must be a positive integer");
        if (Dropout is < 0 or >= 1) throw new ConfigException("dropout", "must be in [0, 1)");
        if (MaxSeqLen <= 1) throw new ConfigException("max_seq_len", "must be at least 2");
    }
}
