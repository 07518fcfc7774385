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
    /// <summary><c>Encoder</c>, <c>Decoder</c>, <c>CrossAttender</c> or <c>AttentionLayers</c>.</summary>
    public string Type { get; init; } = "Decoder";
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

    // attn_* : every attention block
    public int AttnDimHead { get; init; } = 64;
    public double AttnDropout { get; init; }
    public bool AttnTalkingHeads { get; init; }
    public bool AttnHeadScale { get; init; }
    public bool AttnCollabHeads { get; init; }
    public double AttnCollabCompression { get; init; } = 0.3;
    public int? AttnSparseTopk { get; init; }
    public bool AttnUseEntmax15 { get; init; }
    public int AttnNumMemKv { get; init; }
    public bool AttnOnAttn { get; init; }
    public bool AttnGateValues { get; init; }
    public int? AttnMaxAttendPast { get; init; }
    /// <summary>Primer's Multi-DConv-Head Attention: a causal depth-wise convolution after each q/k/v projection.</summary>
    public bool AttnDconv { get; init; }
    public int AttnDconvKernelSize { get; init; } = 3;
    /// <summary>Kernels shared by the heads (labml: dim_head kernels) instead of one per projected channel (the paper).</summary>
    public bool AttnDconvSharedHeads { get; init; }

    /// <summary>Primer EZ (So et al. 2021): squared-ReLU feed-forward plus Multi-DConv-Head Attention.</summary>
    public bool PrimerEz { get; init; }

    // ff_* : every feed-forward block
    public double FfMult { get; init; } = 4;
    public bool FfGlu { get; init; }
    public bool FfReluSquared { get; init; }
    public bool FfPostActLn { get; init; }
    public double FfDropout { get; init; }

    /// <summary>Squared ReLU in the feed-forwards (set directly, or by the <c>primer_ez</c> preset).</summary>
    public bool UsesReluSquared => FfReluSquared || PrimerEz;
    /// <summary>Depth-wise convolutions after the q/k/v projections (set directly, or by <c>primer_ez</c>).</summary>
    public bool UsesDconv => AttnDconv || PrimerEz;

    /// <summary>Whether self-attention is causal (Decoder, or AttentionLayers with <c>causal</c>).</summary>
    public bool IsCausal => Type == "Decoder" || (Type == "AttentionLayers" && Causal);
    public bool HasCrossAttention => CrossAttend || Type == "CrossAttender";
    public bool IsOnlyCross => OnlyCross || Type == "CrossAttender";
    /// <summary>The layers carry their own positions, so the wrapper adds no absolute positional embedding.</summary>
    public bool HasPosEmb => PositionInfusedAttn || RelPosBias || RotaryPosEmb;

    public static readonly string[] Types = { "Encoder", "Decoder", "CrossAttender", "AttentionLayers" };

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
        .Int("attn_dim_head", c => c.AttnDimHead, (c, v) => c with { AttnDimHead = v })
        .Double("attn_dropout", c => c.AttnDropout, (c, v) => c with { AttnDropout = v })
        .Bool("attn_talking_heads", c => c.AttnTalkingHeads, (c, v) => c with { AttnTalkingHeads = v })
        .Bool("attn_head_scale", c => c.AttnHeadScale, (c, v) => c with { AttnHeadScale = v })
        .Bool("attn_collab_heads", c => c.AttnCollabHeads, (c, v) => c with { AttnCollabHeads = v })
        .Double("attn_collab_compression", c => c.AttnCollabCompression, (c, v) => c with { AttnCollabCompression = v })
        .OptInt("attn_sparse_topk", c => c.AttnSparseTopk, (c, v) => c with { AttnSparseTopk = v })
        .Bool("attn_use_entmax15", c => c.AttnUseEntmax15, (c, v) => c with { AttnUseEntmax15 = v })
        .Int("attn_num_mem_kv", c => c.AttnNumMemKv, (c, v) => c with { AttnNumMemKv = v })
        .Bool("attn_on_attn", c => c.AttnOnAttn, (c, v) => c with { AttnOnAttn = v })
        .Bool("attn_gate_values", c => c.AttnGateValues, (c, v) => c with { AttnGateValues = v })
        .OptInt("attn_max_attend_past", c => c.AttnMaxAttendPast, (c, v) => c with { AttnMaxAttendPast = v })
        .Bool("attn_dconv", c => c.AttnDconv, (c, v) => c with { AttnDconv = v })
        .Int("attn_dconv_kernel_size", c => c.AttnDconvKernelSize, (c, v) => c with { AttnDconvKernelSize = v })
        .Bool("attn_dconv_shared_heads", c => c.AttnDconvSharedHeads, (c, v) => c with { AttnDconvSharedHeads = v })
        .Bool("primer_ez", c => c.PrimerEz, (c, v) => c with { PrimerEz = v })
        .Double("ff_mult", c => c.FfMult, (c, v) => c with { FfMult = v })
        .Bool("ff_glu", c => c.FfGlu, (c, v) => c with { FfGlu = v })
        .Bool("ff_relu_squared", c => c.FfReluSquared, (c, v) => c with { FfReluSquared = v })
        .Bool("ff_post_act_ln", c => c.FfPostActLn, (c, v) => c with { FfPostActLn = v })
        .Double("ff_dropout", c => c.FfDropout, (c, v) => c with { FfDropout = v });

    public static AttentionLayersConfig FromJson(JsonElement obj, string prefix)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw new ConfigException(prefix.TrimEnd('.'), "expected an object with a 'type'");
        var type = obj.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : null;
        if (type is null || !Types.Contains(type))
            throw new ConfigException(prefix + "type", $"expected one of {string.Join(", ", Types)}, got {(type is null ? "nothing" : $"'{type}'")}");
        if (type != "AttentionLayers" && obj.TryGetProperty("causal", out _))
            throw new ConfigException(prefix + "causal", $"cannot set causality on {type} (it is {(type == "Decoder" ? "always" : "never")} causal)");
        if (type == "CrossAttender" && (obj.TryGetProperty("cross_attend", out _) || obj.TryGetProperty("only_cross", out _)))
            throw new ConfigException(prefix + "cross_attend", "CrossAttender sets cross_attend and only_cross itself");
        var c = Table.Read(obj, new AttentionLayersConfig { Type = type }, prefix, "type");
        c.Validate(prefix);
        return c;
    }

    public JsonObject ToJson()
    {
        var o = new JsonObject { ["type"] = Type };
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
        Check(Dim > 0, "dim", "must be a positive integer");
        Check(Depth > 0, "depth", "must be a positive integer");
        Check(Heads > 0, "heads", "must be a positive integer");
        Check(AttnDimHead > 0, "attn_dim_head", "must be a positive integer");
        Check(FfMult > 0 && double.IsFinite(FfMult), "ff_mult", "must be a positive finite number");
        // Sizes are ints in the modules: check the products before anything multiplies them unchecked.
        Check((long)Heads * AttnDimHead <= int.MaxValue, "attn_dim_head", $"heads × attn_dim_head = {(long)Heads * AttnDimHead} exceeds {int.MaxValue}");
        Check(Math.Floor(Dim * FfMult) is >= 1 and <= int.MaxValue, "ff_mult",
            $"gives a feed-forward width of int({Dim} × {FfMult}) = {Math.Floor(Dim * FfMult)}; it must be between 1 and {int.MaxValue}");
        Check(AttnDropout is >= 0 and < 1, "attn_dropout", "must be in [0, 1)");
        Check(FfDropout is >= 0 and < 1, "ff_dropout", "must be in [0, 1)");
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
        Check(AttnNumMemKv >= 0, "attn_num_mem_kv", "must not be negative");
        Check(AttnSparseTopk is null or > 0, "attn_sparse_topk", "must be positive");
        Check(AttnCollabCompression is > 0 and <= 1, "attn_collab_compression", "must be in (0, 1]");
        Check(!(AttnCollabHeads && (int)(AttnCollabCompression * AttnDimHead * Heads) < 1), "attn_collab_compression", "leaves no query/key dimension");
        Check(RotaryEmbDim is null or > 0, "rotary_emb_dim", "must be positive");
        Check(AttnDconvKernelSize >= 1, "attn_dconv_kernel_size", "must be at least 1");
        Check(!(UsesDconv && AttnCollabHeads), "attn_dconv", "depth-wise convolutions cannot be combined with attn_collab_heads (the query width differs per head)");
        if (RotaryPosEmb)
            Check(RotaryLength <= AttnDimHead, "rotary_emb_dim",
                $"rotary dimension {RotaryLength} (at least 32, as in x-transformers) exceeds attn_dim_head {AttnDimHead}");
        Check(!(OnlyCross && !CrossAttend && Type != "CrossAttender"), "only_cross", "needs cross_attend");
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
    public int RotaryLength => Math.Max(RotaryEmbDim ?? AttnDimHead / 2, 32);
}
