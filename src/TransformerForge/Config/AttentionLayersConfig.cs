using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>
/// The stack of attention and feed-forward layers: x-transformers' <c>AttentionLayers</c> and its <c>Encoder</c>,
/// <c>Decoder</c> and <c>CrossAttender</c> flavours. Property names are x-transformers' keywords in PascalCase;
/// <c>attn_*</c> options configure every attention block and <c>ff_*</c> every feed-forward block.
/// </summary>
public sealed record AttentionLayersConfig
{
    /// <summary>Which x-transformers class: <c>Encoder</c>, <c>Decoder</c>, <c>CrossAttender</c> or <c>AttentionLayers</c>.</summary>
    public LayerStackType Type { get; init; } = LayerStackType.Decoder;
    public int Dim { get; init; }
    public int Depth { get; init; }
    public int Heads { get; init; } = 8;
    /// <summary>Only for the plain <c>AttentionLayers</c> type; Decoder is causal and Encoder is not.</summary>
    public bool Causal { get; init; }
    public bool CrossAttend { get; init; }
    public bool OnlyCross { get; init; }

    // Normalisation and residual paths
    public bool PreNorm { get; init; } = true;
    public bool UseScalenorm { get; init; }
    public bool UseRmsnorm { get; init; }
    public bool UseRezero { get; init; }
    public bool SandwichNorm { get; init; }
    public bool GateResidual { get; init; }
    public bool ScaleResidual { get; init; }
    public bool ZeroInitBranchOutput { get; init; }

    // Positions
    public bool AlibiPosBias { get; init; }
    public int? AlibiNumHeads { get; init; }
    public bool AlibiLearned { get; init; }
    public bool RelPosBias { get; init; }
    public int RelPosNumBuckets { get; init; } = 32;
    public int RelPosMaxDistance { get; init; } = 128;
    public bool PositionInfusedAttn { get; init; }
    public bool RotaryPosEmb { get; init; }
    public int? RotaryEmbDim { get; init; }

    // Layer order
    public IReadOnlyList<string>? CustomLayers { get; init; }
    public int? SandwichCoef { get; init; }
    public int? ParRatio { get; init; }
    public bool Macaron { get; init; }
    public IReadOnlyList<int> ShiftTokens { get; init; } = new[] { 0 };

    // Attention across layers
    public bool ResidualAttn { get; init; }
    public bool CrossResidualAttn { get; init; }

    /// <summary>The <c>attn_*</c> keys: every attention block is built with these.</summary>
    public AttentionOptions Attn { get; init; } = new();

    /// <summary>Primer EZ (So et al. 2021): squared-ReLU feed-forward plus Multi-DConv-Head Attention.</summary>
    public bool PrimerEz { get; init; }

    /// <summary>The <c>ff_*</c> keys: every feed-forward block is built with these.</summary>
    public FeedForwardOptions Ff { get; init; } = new();

    /// <summary>Squared ReLU in the feed-forwards (set directly, or by the <c>primer_ez</c> preset).</summary>
    public bool UsesReluSquared => Ff.ReluSquared || PrimerEz;
    /// <summary>Depth-wise convolutions after the q/k/v projections (set directly, or by <c>primer_ez</c>).</summary>
    public bool UsesDconv => Attn.Dconv || PrimerEz;

    /// <summary>The options of the self-attention blocks: the <c>attn_*</c> keys, with <c>primer_ez</c>'s convolutions.</summary>
    public AttentionOptions SelfAttn => UsesDconv == Attn.Dconv ? Attn : Attn with { Dconv = UsesDconv };
    /// <summary>The options of the cross-attention blocks: the <c>attn_*</c> keys; the context is not a sequence to convolve.</summary>
    public AttentionOptions CrossAttn => Attn.Dconv ? Attn with { Dconv = false } : Attn;
    /// <summary>The options of the feed-forward blocks: the <c>ff_*</c> keys, with <c>primer_ez</c>'s squared ReLU.</summary>
    public FeedForwardOptions FeedForward => UsesReluSquared == Ff.ReluSquared ? Ff : Ff with { ReluSquared = UsesReluSquared };

    /// <summary>Whether self-attention is causal (Decoder, or AttentionLayers with <c>causal</c>).</summary>
    public bool IsCausal => Type == LayerStackType.Decoder || (Type == LayerStackType.AttentionLayers && Causal);
    public bool HasCrossAttention => CrossAttend || Type == LayerStackType.CrossAttender;
    public bool IsOnlyCross => OnlyCross || Type == LayerStackType.CrossAttender;
    /// <summary>The layers carry their own positions, so the wrapper adds no absolute positional embedding.</summary>
    public bool HasPosEmb => PositionInfusedAttn || RelPosBias || RotaryPosEmb;

    public static readonly OptionTable<AttentionLayersConfig> Table = new OptionTable<AttentionLayersConfig>()
        .Int("dim", c => c.Dim, (c, v) => c with { Dim = v })
        .Int("depth", c => c.Depth, (c, v) => c with { Depth = v })
        .Int("heads", c => c.Heads, (c, v) => c with { Heads = v })
        .Bool("causal", c => c.Causal, (c, v) => c with { Causal = v })
        .Bool("cross_attend", c => c.CrossAttend, (c, v) => c with { CrossAttend = v })
        .Bool("only_cross", c => c.OnlyCross, (c, v) => c with { OnlyCross = v })
        .Bool("pre_norm", c => c.PreNorm, (c, v) => c with { PreNorm = v })
        .Bool("use_scalenorm", c => c.UseScalenorm, (c, v) => c with { UseScalenorm = v })
        .Bool("use_rmsnorm", c => c.UseRmsnorm, (c, v) => c with { UseRmsnorm = v })
        .Bool("use_rezero", c => c.UseRezero, (c, v) => c with { UseRezero = v })
        .Bool("sandwich_norm", c => c.SandwichNorm, (c, v) => c with { SandwichNorm = v })
        .Bool("gate_residual", c => c.GateResidual, (c, v) => c with { GateResidual = v })
        .Bool("scale_residual", c => c.ScaleResidual, (c, v) => c with { ScaleResidual = v })
        .Bool("zero_init_branch_output", c => c.ZeroInitBranchOutput, (c, v) => c with { ZeroInitBranchOutput = v })
        .Bool("alibi_pos_bias", c => c.AlibiPosBias, (c, v) => c with { AlibiPosBias = v })
        .Alias("alibi_pos_emb", "alibi_pos_bias")
        .OptInt("alibi_num_heads", c => c.AlibiNumHeads, (c, v) => c with { AlibiNumHeads = v })
        .Bool("alibi_learned", c => c.AlibiLearned, (c, v) => c with { AlibiLearned = v })
        .Bool("rel_pos_bias", c => c.RelPosBias, (c, v) => c with { RelPosBias = v })
        .Int("rel_pos_num_buckets", c => c.RelPosNumBuckets, (c, v) => c with { RelPosNumBuckets = v })
        .Int("rel_pos_max_distance", c => c.RelPosMaxDistance, (c, v) => c with { RelPosMaxDistance = v })
        .Bool("position_infused_attn", c => c.PositionInfusedAttn, (c, v) => c with { PositionInfusedAttn = v })
        .Bool("rotary_pos_emb", c => c.RotaryPosEmb, (c, v) => c with { RotaryPosEmb = v })
        .OptInt("rotary_emb_dim", c => c.RotaryEmbDim, (c, v) => c with { RotaryEmbDim = v })
        .OptStringList("custom_layers", c => c.CustomLayers, (c, v) => c with { CustomLayers = v })
        .OptInt("sandwich_coef", c => c.SandwichCoef, (c, v) => c with { SandwichCoef = v })
        .OptInt("par_ratio", c => c.ParRatio, (c, v) => c with { ParRatio = v })
        .Bool("macaron", c => c.Macaron, (c, v) => c with { Macaron = v })
        .IntOrList("shift_tokens", c => c.ShiftTokens, (c, v) => c with { ShiftTokens = v })
        .Bool("residual_attn", c => c.ResidualAttn, (c, v) => c with { ResidualAttn = v })
        .Bool("cross_residual_attn", c => c.CrossResidualAttn, (c, v) => c with { CrossResidualAttn = v })
        .Include(AttentionOptions.Table, c => c.Attn, (c, v) => c with { Attn = v })
        .Bool("primer_ez", c => c.PrimerEz, (c, v) => c with { PrimerEz = v })
        .Include(FeedForwardOptions.Table, c => c.Ff, (c, v) => c with { Ff = v });

    public static AttentionLayersConfig FromJson(JsonElement obj, string prefix)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw new ConfigException(prefix.TrimEnd('.'), "expected an object with a 'type'");
        var type = LayerStackTypes.Parse(obj.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null, prefix + "type");
        if (type != LayerStackType.AttentionLayers && obj.TryGetProperty("causal", out _))
            throw new ConfigException(prefix + "causal", $"cannot set causality on {type.JsonName()} (it is {(type == LayerStackType.Decoder ? "always" : "never")} causal)");
        if (type == LayerStackType.CrossAttender && (obj.TryGetProperty("cross_attend", out _) || obj.TryGetProperty("only_cross", out _)))
            throw new ConfigException(prefix + "cross_attend", "CrossAttender sets cross_attend and only_cross itself");
        var c = Table.Read(obj, new AttentionLayersConfig { Type = type }, prefix, "type");
        c.Validate(prefix);
        return c;
    }

    public JsonObject ToJson()
    {
        var o = new JsonObject { ["type"] = Type.JsonName() };
        Table.Write(this, new AttentionLayersConfig { Type = Type }, o, "dim", "depth");
        return o;
    }

    /// <summary>The layer order: 'a' self-attention, 'c' cross-attention, 'f' feed-forward (x-transformers' rules).</summary>
    public IReadOnlyList<char> LayerTypes()
    {
        char[] block = HasCrossAttention && !IsOnlyCross ? new[] { 'a', 'c', 'f' }
            : HasCrossAttention ? new[] { 'c', 'f' } : new[] { 'a', 'f' };
        if (Macaron) block = new[] { 'f' }.Concat(block).ToArray();

        if (CustomLayers is { } custom) return custom.Select(s => s[0]).ToArray();
        if (ParRatio is { } par)
        {
            // PAR Transformer (Mandava et al. 2020): attention concentrated in the first 2/3 of the stack.
            int parDepth = Depth * block.Length;
            var noFf = block.Where(b => b != 'f').ToArray();
            int parAttn = parDepth / par;
            int depthCut = parDepth * 2 / 3;
            int parWidth = (depthCut + depthCut / parAttn) / parAttn;
            var parBlock = noFf.Concat(Enumerable.Repeat('f', parWidth - noFf.Length)).ToArray();
            var head = Enumerable.Range(0, parAttn).SelectMany(_ => parBlock).ToList();
            return head.Concat(Enumerable.Repeat('f', parDepth - head.Count)).ToArray();
        }
        if (SandwichCoef is { } k)
            // Sandwich Transformer (Press et al. 2020): attention first, feed-forward last.
            return Enumerable.Repeat('a', k).Concat(Enumerable.Range(0, Depth - k).SelectMany(_ => block)).Concat(Enumerable.Repeat('f', k)).ToArray();
        return Enumerable.Range(0, Depth).SelectMany(_ => block).ToArray();
    }

    /// <summary>The checks x-transformers asserts on, plus basic ranges; each names its key.</summary>
    public void Validate(string prefix = "")
    {
        void Check(bool ok, string key, string message)
        {
            if (!ok) throw new ConfigException(prefix + key, message);
        }
        Type.JsonName(prefix + "type");
        Check(Dim > 0, "dim", "must be a positive integer");
        Check(Depth > 0, "depth", "must be a positive integer");
        SelfAttn.Validate(Heads, prefix);
        Ff.Validate(prefix);
        // The hidden width is an int in the modules: int(dim × ff_mult) must be at least 1 and fit.
        Check(Math.Floor(Dim * Ff.Mult) is >= 1 and <= int.MaxValue, "ff_mult",
            $"gives a feed-forward width of int({Dim} × {Ff.Mult}) = {Math.Floor(Dim * Ff.Mult)}; it must be between 1 and {int.MaxValue}");
        Check(!(AlibiPosBias && RelPosBias), "alibi_pos_bias", "you can only choose ALiBi positional bias or T5 relative positional bias (rel_pos_bias), not both");
        Check(RelPosNumBuckets <= RelPosMaxDistance, "rel_pos_num_buckets", "must be at most rel_pos_max_distance");
        Check(RelPosNumBuckets >= 2, "rel_pos_num_buckets", "must be at least 2");
        if (AlibiPosBias)
        {
            Check((AlibiNumHeads ?? Heads) <= Heads && (AlibiNumHeads ?? Heads) > 0, "alibi_num_heads", "must be between 1 and the number of heads");
            Check(IsCausal, "alibi_pos_bias", "ALiBi works only with causal (Decoder) layers in x-transformers 0.20");
        }
        Check(PreNorm || !SandwichNorm, "sandwich_norm", "sandwich norm cannot be used when not using pre_norm");
        Check(!(UseScalenorm && UseRmsnorm), "use_rmsnorm", "choose one of use_scalenorm and use_rmsnorm");
        Check(RotaryEmbDim is null or > 0, "rotary_emb_dim", "must be positive");
        if (RotaryPosEmb)
            Check(RotaryLength <= Attn.DimHead, "rotary_emb_dim",
                $"rotary dimension {RotaryLength} (at least 32, as in x-transformers) exceeds attn_dim_head {Attn.DimHead}");
        Check(!(OnlyCross && !CrossAttend && Type != LayerStackType.CrossAttender), "only_cross", "needs cross_attend");
        Check(ShiftTokens.Count > 0, "shift_tokens", "must be an integer or a non-empty list");
        Check(ShiftTokens.All(s => s >= 0), "shift_tokens", "must not be negative");
        // Each shift amount gets its own slice of the features (0..s causal, -s..s otherwise): at least one feature each.
        long segments = ShiftTokens.Max() * (IsCausal ? 1L : 2L) + 1;
        Check(segments <= Dim, "shift_tokens", $"{ShiftTokens.Max()} needs {segments} feature segments, more than dim {Dim}");
        if (CustomLayers is { } custom)
        {
            Check(custom.Count > 0 && custom.All(s => s is "a" or "c" or "f"), "custom_layers", "must be a non-empty list of 'a', 'c' and 'f'");
            Check(!custom.Contains("c") || HasCrossAttention, "custom_layers", "has a cross-attention layer 'c' but cross_attend is not set");
        }
        if (ParRatio is { } par)
        {
            int blockLen = (HasCrossAttention && !IsOnlyCross ? 3 : 2) + (Macaron ? 1 : 0);
            int parDepth = Depth * blockLen;
            Check(par > 1 && par <= parDepth, "par_ratio", $"par ratio out of range (must be in (1, {parDepth}])");
            int noFf = blockLen - 1 - (Macaron ? 1 : 0);
            int parAttn = parDepth / par, depthCut = parDepth * 2 / 3;
            Check(parAttn > 0 && noFf <= (depthCut + depthCut / parAttn) / parAttn, "par_ratio", "default block is too large for par_ratio");
        }
        if (SandwichCoef is { } k)
            Check(k > 0 && k <= Depth, "sandwich_coef", "sandwich coefficient should be between 1 and the depth");
        Check(new[] { CustomLayers is not null, ParRatio is not null, SandwichCoef is not null }.Count(b => b) <= 1, "custom_layers",
            "choose at most one of custom_layers, par_ratio and sandwich_coef");
        // Counted, not listed: LayerTypes() of depth 2^31 would allocate gigabytes before any size check.
        var (selfAttn, crossAttn, feedForward) = Models.ModelSize.LayerCounts(this);
        long n = selfAttn + crossAttn + feedForward;
        Check(ShiftTokens.Count == 1 || ShiftTokens.Count == n, "shift_tokens", $"a list must have one value per layer ({n} layers)");
    }

    /// <summary>Rotary dimension as x-transformers computes it: <c>max(rotary_emb_dim ?? dim_head/2, 32)</c>.</summary>
    public int RotaryLength => Math.Max(RotaryEmbDim ?? Attn.DimHead / 2, 32);
}
