using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>
/// The stack of attention and feed-forward layers: x-transformers' <c>AttentionLayers</c> and its <c>Encoder</c>,
/// <c>Decoder</c> and <c>CrossAttender</c> flavours. Property names are x-transformers' keywords in PascalCase;
/// <c>attn_*</c> options configure every attention block and <c>ff_*</c> every feed-forward block.
/// <see cref="Version"/> says which x-transformers release the stack follows; the model JSON names it at its top level.
/// </summary>
public sealed record AttentionLayersConfig
{
    readonly XTransformersVersion _version;
    readonly AttentionOptions _attn = new();
    readonly FeedForwardOptions _ff = new();

    /// <summary>
    /// The x-transformers release whose defaults, layout and names the stack follows (not a key of the layer object:
    /// <c>x_transformers_version</c> at the top of the model JSON). The attention and feed-forward options carry it too.
    /// </summary>
    public XTransformersVersion Version
    {
        get => _version;
        init
        {
            _version = value;
            _attn = _attn with { Version = value };
            _ff = _ff with { Version = value };
        }
    }

    /// <summary>Whether the stack follows x-transformers 1.40.</summary>
    public bool IsV140 => Version == XTransformersVersion.V1_40;

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
    /// <summary>RMSNorm without a learned gain (x-transformers 1.40's <c>SimpleRMSNorm</c>).</summary>
    public bool UseSimpleRmsnorm { get; init; }
    /// <summary>1.40: norm gains (and LayerScale) are stored as offsets from 1, so weight decay pulls them towards 1 (Ohad Rubin's trick).</summary>
    public bool NormAddUnitOffset { get; init; } = true;
    public bool UseRezero { get; init; }
    public bool SandwichNorm { get; init; }
    public bool GateResidual { get; init; }
    public bool ScaleResidual { get; init; }
    public bool ZeroInitBranchOutput { get; init; }
    /// <summary>ResiDual (Xie et al. 2023): post-norm layers plus a second, un-normalised residual stream (scaled) added through the final norm.</summary>
    public bool ResiDual { get; init; }
    public double ResiDualScale { get; init; } = 1;
    /// <summary>LayerScale (Touvron et al. 2021, CaiT): each branch's output times a learned per-feature scale.</summary>
    public bool UseLayerscale { get; init; }
    public double LayerscaleInitValue { get; init; }
    /// <summary>U-Net skips (Bao et al. 2022, U-ViT): each layer of the second half also gets the hidden state of its mirror layer in the first half.</summary>
    public bool UnetSkips { get; init; }
    /// <summary>Value residual learning (Zhou et al. 2024, ResFormer): every later self-attention adds the first layer's values to its own.</summary>
    public bool AddValueResidual { get; init; }
    /// <summary>One block of layers run <c>depth</c> times with the same weights (Dehghani et al. 2018, Universal Transformers).</summary>
    public bool WeightTieLayers { get; init; }
    /// <summary>Soft-capped output before the final norm (Gemma 2): value · tanh(x / value).</summary>
    public bool SoftclampOutput { get; init; }
    public double SoftclampOutputValue { get; init; } = 30;

    // Positions
    public bool AlibiPosBias { get; init; }
    public int? AlibiNumHeads { get; init; }
    public bool AlibiLearned { get; init; }
    /// <summary>Dynamic position bias (Wang et al. 2021, CrossFormer): a small MLP maps each relative distance to a bias per head.</summary>
    public bool DynamicPosBias { get; init; }
    /// <summary>The MLP sees sign(d)·log(|d| + 1) instead of the distance d.</summary>
    public bool DynamicPosBiasLogDistance { get; init; }
    public int DynamicPosBiasMlpDepth { get; init; } = 2;
    public bool DynamicPosBiasNorm { get; init; }
    public bool RelPosBias { get; init; }
    public int RelPosNumBuckets { get; init; } = 32;
    public int RelPosMaxDistance { get; init; } = 128;
    public bool PositionInfusedAttn { get; init; }
    public bool RotaryPosEmb { get; init; }
    public int? RotaryEmbDim { get; init; }
    /// <summary>xPos (Sun et al. 2022, "A Length-Extrapolatable Transformer"): rotary plus a decay of scores with distance (causal only).</summary>
    public bool RotaryXpos { get; init; }
    public int RotaryXposScaleBase { get; init; } = 512;

    // Layer order
    public IReadOnlyList<string>? CustomLayers { get; init; }
    public int? SandwichCoef { get; init; }
    public int? ParRatio { get; init; }
    public bool Macaron { get; init; }
    public IReadOnlyList<int> ShiftTokens { get; init; } = new[] { 0 };

    // Attention across layers
    public bool ResidualAttn { get; init; }
    public bool CrossResidualAttn { get; init; }

    /// <summary>The <c>attn_*</c> keys: every attention block is built with these (they carry the stack's <see cref="Version"/>).</summary>
    public AttentionOptions Attn { get => _attn; init => _attn = value with { Version = _version }; }

    /// <summary>Primer EZ (So et al. 2021): squared-ReLU feed-forward plus Multi-DConv-Head Attention.</summary>
    public bool PrimerEz { get; init; }

    /// <summary>The <c>ff_*</c> keys: every feed-forward block is built with these (they carry the stack's <see cref="Version"/>).</summary>
    public FeedForwardOptions Ff { get => _ff; init => _ff = value with { Version = _version }; }

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
    /// <summary>Rotary embeddings are on (<c>rotary_pos_emb</c>, or <c>rotary_xpos</c> which implies it).</summary>
    public bool UsesRotary => RotaryPosEmb || RotaryXpos;
    /// <summary>The layers carry their own positions, so the wrapper adds no absolute positional embedding.</summary>
    public bool HasPosEmb => PositionInfusedAttn || RelPosBias || UsesRotary;
    /// <summary>1.40: the stack normalises its output itself (<c>final_norm</c>) when pre-norm or ResiDual.</summary>
    public bool HasFinalNorm => IsV140 && (PreNorm || ResiDual);
    /// <summary>Pre-norm in effect: ResiDual turns it off (its layers are post-norm).</summary>
    public bool UsesPreNorm => PreNorm && !ResiDual;

    public static readonly OptionTable<AttentionLayersConfig> Table = new OptionTable<AttentionLayersConfig>()
        .VersionedBy(c => c.Version)
        .Int("dim", c => c.Dim, (c, v) => c with { Dim = v })
        .Int("depth", c => c.Depth, (c, v) => c with { Depth = v })
        .Int("heads", c => c.Heads, (c, v) => c with { Heads = v })
        .Bool("causal", c => c.Causal, (c, v) => c with { Causal = v })
        .Bool("cross_attend", c => c.CrossAttend, (c, v) => c with { CrossAttend = v })
        .Bool("only_cross", c => c.OnlyCross, (c, v) => c with { OnlyCross = v })
        .Bool("pre_norm", c => c.PreNorm, (c, v) => c with { PreNorm = v })
        .Bool("use_scalenorm", c => c.UseScalenorm, (c, v) => c with { UseScalenorm = v })
        .Bool("use_rmsnorm", c => c.UseRmsnorm, (c, v) => c with { UseRmsnorm = v })
        .Bool("use_simple_rmsnorm", c => c.UseSimpleRmsnorm, (c, v) => c with { UseSimpleRmsnorm = v }).Only(XTransformersVersion.V1_40)
        .Bool("norm_add_unit_offset", c => c.NormAddUnitOffset, (c, v) => c with { NormAddUnitOffset = v }).Only(XTransformersVersion.V1_40)
        .Bool("use_rezero", c => c.UseRezero, (c, v) => c with { UseRezero = v }).Only(XTransformersVersion.V0_20)
        .Bool("sandwich_norm", c => c.SandwichNorm, (c, v) => c with { SandwichNorm = v })
        .Bool("gate_residual", c => c.GateResidual, (c, v) => c with { GateResidual = v })
        .Bool("scale_residual", c => c.ScaleResidual, (c, v) => c with { ScaleResidual = v })
        .Bool("zero_init_branch_output", c => c.ZeroInitBranchOutput, (c, v) => c with { ZeroInitBranchOutput = v })
        .Bool("resi_dual", c => c.ResiDual, (c, v) => c with { ResiDual = v }).Only(XTransformersVersion.V1_40)
        .Double("resi_dual_scale", c => c.ResiDualScale, (c, v) => c with { ResiDualScale = v }).Only(XTransformersVersion.V1_40)
        .Bool("use_layerscale", c => c.UseLayerscale, (c, v) => c with { UseLayerscale = v }).Only(XTransformersVersion.V1_40)
        .Double("layerscale_init_value", c => c.LayerscaleInitValue, (c, v) => c with { LayerscaleInitValue = v }).Only(XTransformersVersion.V1_40)
        .Bool("unet_skips", c => c.UnetSkips, (c, v) => c with { UnetSkips = v }).Only(XTransformersVersion.V1_40)
        .Bool("add_value_residual", c => c.AddValueResidual, (c, v) => c with { AddValueResidual = v }).Only(XTransformersVersion.V1_40)
        .Bool("weight_tie_layers", c => c.WeightTieLayers, (c, v) => c with { WeightTieLayers = v }).Only(XTransformersVersion.V1_40)
        .Bool("softclamp_output", c => c.SoftclampOutput, (c, v) => c with { SoftclampOutput = v }).Only(XTransformersVersion.V1_40)
        .Double("softclamp_output_value", c => c.SoftclampOutputValue, (c, v) => c with { SoftclampOutputValue = v }).Only(XTransformersVersion.V1_40)
        .Bool("alibi_pos_bias", c => c.AlibiPosBias, (c, v) => c with { AlibiPosBias = v })
        .Alias("alibi_pos_emb", "alibi_pos_bias")
        .OptInt("alibi_num_heads", c => c.AlibiNumHeads, (c, v) => c with { AlibiNumHeads = v })
        .Bool("alibi_learned", c => c.AlibiLearned, (c, v) => c with { AlibiLearned = v }).Only(XTransformersVersion.V0_20)
        .Bool("dynamic_pos_bias", c => c.DynamicPosBias, (c, v) => c with { DynamicPosBias = v }).Only(XTransformersVersion.V1_40)
        .Bool("dynamic_pos_bias_log_distance", c => c.DynamicPosBiasLogDistance, (c, v) => c with { DynamicPosBiasLogDistance = v }).Only(XTransformersVersion.V1_40)
        .Int("dynamic_pos_bias_mlp_depth", c => c.DynamicPosBiasMlpDepth, (c, v) => c with { DynamicPosBiasMlpDepth = v }).Only(XTransformersVersion.V1_40)
        .Bool("dynamic_pos_bias_norm", c => c.DynamicPosBiasNorm, (c, v) => c with { DynamicPosBiasNorm = v }).Only(XTransformersVersion.V1_40)
        .Bool("rel_pos_bias", c => c.RelPosBias, (c, v) => c with { RelPosBias = v })
        .Int("rel_pos_num_buckets", c => c.RelPosNumBuckets, (c, v) => c with { RelPosNumBuckets = v })
        .Int("rel_pos_max_distance", c => c.RelPosMaxDistance, (c, v) => c with { RelPosMaxDistance = v })
        .Bool("position_infused_attn", c => c.PositionInfusedAttn, (c, v) => c with { PositionInfusedAttn = v }).Only(XTransformersVersion.V0_20)
        .Bool("rotary_pos_emb", c => c.RotaryPosEmb, (c, v) => c with { RotaryPosEmb = v })
        .OptInt("rotary_emb_dim", c => c.RotaryEmbDim, (c, v) => c with { RotaryEmbDim = v })
        .Bool("rotary_xpos", c => c.RotaryXpos, (c, v) => c with { RotaryXpos = v }).Only(XTransformersVersion.V1_40)
        .Int("rotary_xpos_scale_base", c => c.RotaryXposScaleBase, (c, v) => c with { RotaryXposScaleBase = v }).Only(XTransformersVersion.V1_40)
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

    public static AttentionLayersConfig FromJson(JsonElement obj, string prefix, XTransformersVersion version = XTransformersVersion.V0_20)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw new ConfigException(prefix.TrimEnd('.'), "expected an object with a 'type'");
        var type = LayerStackTypes.Parse(obj.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null, prefix + "type");
        if (type != LayerStackType.AttentionLayers && obj.TryGetProperty("causal", out _))
            throw new ConfigException(prefix + "causal", $"cannot set causality on {type.JsonName()} (it is {(type == LayerStackType.Decoder ? "always" : "never")} causal)");
        if (type == LayerStackType.CrossAttender && (obj.TryGetProperty("cross_attend", out _) || obj.TryGetProperty("only_cross", out _)))
            throw new ConfigException(prefix + "cross_attend", "CrossAttender sets cross_attend and only_cross itself");
        if (obj.TryGetProperty(XTransformersVersions.Key, out _) && prefix.Length > 0)
            throw new ConfigException(prefix + XTransformersVersions.Key, "belongs at the top of the model JSON (it applies to the whole model)");
        var c = Table.Read(obj, new AttentionLayersConfig { Type = type, Version = version }, prefix, "type", XTransformersVersions.Key);
        c.Validate(prefix);
        return c;
    }

    /// <summary>The layer object (the version key is written by the model at its top level).</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject { ["type"] = Type.JsonName() };
        Table.Write(this, new AttentionLayersConfig { Type = Type, Version = Version }, o, "dim", "depth");
        return o;
    }

    /// <summary>One block of the default order: self-attention, cross-attention (if any), feed-forward; macaron adds a leading feed-forward.</summary>
    char[] DefaultBlock()
    {
        char[] block = HasCrossAttention && !IsOnlyCross ? new[] { 'a', 'c', 'f' }
            : HasCrossAttention ? new[] { 'c', 'f' } : new[] { 'a', 'f' };
        return Macaron ? new[] { 'f' }.Concat(block).ToArray() : block;
    }

    /// <summary>Whether the layer order is <c>depth</c> default blocks (no custom_layers, par_ratio or sandwich_coef).</summary>
    bool HasDefaultOrder => CustomLayers is null && ParRatio is null && SandwichCoef is null;

    /// <summary>
    /// PAR's block width: the first 2/3 of the <paramref name="parDepth"/> layers, spread over <paramref name="parAttn"/>
    /// attention blocks, as x-transformers computes it. The head (parAttn × this) may outgrow parDepth when parAttn is 1.
    /// </summary>
    internal static long ParBlockWidth(long parDepth, long parAttn)
    {
        long depthCut = parDepth * 2 / 3;
        return (depthCut + depthCut / parAttn) / parAttn;
    }

    /// <summary>
    /// The layers that own weights, in order: 'a' self-attention, 'c' cross-attention, 'f' feed-forward (x-transformers'
    /// rules). With <c>weight_tie_layers</c> that is a single block, run <c>depth</c> times (see <see cref="ExecutionOrder"/>).
    /// </summary>
    public IReadOnlyList<char> LayerTypes()
    {
        var block = DefaultBlock();
        if (WeightTieLayers) return block;

        if (CustomLayers is { } custom) return custom.Select(s => s[0]).ToArray();
        if (ParRatio is { } par)
        {
            // PAR Transformer (Mandava et al. 2020): attention concentrated in the first 2/3 of the stack.
            int parDepth = Depth * block.Length;
            var noFf = block.Where(b => b != 'f').ToArray();
            int parAttn = parDepth / par;
            int parWidth = (int)ParBlockWidth(parDepth, parAttn);
            var parBlock = noFf.Concat(Enumerable.Repeat('f', parWidth - noFf.Length)).ToArray();
            var head = Enumerable.Range(0, parAttn).SelectMany(_ => parBlock).ToList();
            // Python's negative repeat is empty: when par_attn is 1 the head may be longer than par_depth.
            return head.Concat(Enumerable.Repeat('f', Math.Max(0, parDepth - head.Count))).ToArray();
        }
        if (SandwichCoef is { } k)
            // Sandwich Transformer (Press et al. 2020): attention first, feed-forward last.
            return Enumerable.Repeat('a', k).Concat(Enumerable.Range(0, Depth - k).SelectMany(_ => block)).Concat(Enumerable.Repeat('f', k)).ToArray();
        return Enumerable.Range(0, Depth).SelectMany(_ => block).ToArray();
    }

    /// <summary>Which layer of <see cref="LayerTypes"/> runs at each step: each once, in order, or the tied block <c>depth</c> times.</summary>
    public IReadOnlyList<int> ExecutionOrder()
    {
        int n = LayerTypes().Count;
        return WeightTieLayers ? Enumerable.Range(0, Depth).SelectMany(_ => Enumerable.Range(0, n)).ToArray() : Enumerable.Range(0, n).ToArray();
    }

    /// <summary>
    /// U-Net skips as 1.40 wires them: layer index → the executed-step index whose input it concatenates with its own.
    /// The first layer of each block in the second half (block index ≥ depth / 2) takes the next skip from the end of
    /// [0, b, 2b, ...] (b = the default block's length, or 1 for other orders), so the last half mirrors the first.
    /// </summary>
    public IReadOnlyDictionary<int, int> UnetSkipSources(string prefix = "")
    {
        var result = new Dictionary<int, int>();
        if (!UnetSkips) return result;
        int blockLen = HasDefaultOrder ? DefaultBlock().Length : 1;
        int depth = WeightTieLayers ? 1 : Depth;
        var skips = new Stack<int>(Enumerable.Range(0, depth / blockLen).Select(i => i * blockLen));
        var types = LayerTypes();
        for (int ind = 0; ind < types.Count; ind++)
        {
            bool blockBegin = ind % blockLen == 0;
            if (blockBegin && ind / blockLen >= depth / 2.0)
            {
                if (skips.Count == 0) throw new ConfigException(prefix + "unet_skips", "the second half has more blocks than the first half has skips (x-transformers fails here too)");
                int source = skips.Pop();
                if (source >= ind)
                    throw new ConfigException(prefix + "unet_skips", $"layer {ind} would join the input of layer {source}, which runs after it (x-transformers fails here too)");
                result[ind] = source;
            }
        }
        return result;
    }

    /// <summary>The checks x-transformers asserts on, plus basic ranges; each names its key.</summary>
    public void Validate(string prefix = "")
    {
        void Check(bool ok, string key, string message)
        {
            if (!ok) throw new ConfigException(prefix + key, message);
        }
        Type.JsonName(prefix + "type");
        Table.CheckVersion(this, new AttentionLayersConfig { Type = Type, Version = Version }, Version, prefix);
        Check(Dim > 0, "dim", "must be a positive integer");
        Check(Depth > 0, "depth", "must be a positive integer");
        SelfAttn.Validate(Heads, prefix);
        Ff.Validate(prefix);
        // The hidden width is an int in the modules: int(dim × ff_mult) must be at least 1 and fit.
        Check(Math.Floor(Dim * Ff.Mult) is >= 1 and <= int.MaxValue, "ff_mult",
            $"gives a feed-forward width of int({Dim} × {Ff.Mult}) = {Math.Floor(Dim * Ff.Mult)}; it must be between 1 and {int.MaxValue}");
        Check(!(AlibiPosBias && RelPosBias), "alibi_pos_bias", "you can only choose ALiBi positional bias or T5 relative positional bias (rel_pos_bias), not both");
        Check(new[] { AlibiPosBias, RelPosBias, DynamicPosBias }.Count(b => b) <= 1, "dynamic_pos_bias",
            "you can only choose up to one of T5 (rel_pos_bias), ALiBi (alibi_pos_bias) or dynamic position bias");
        Check(DynamicPosBiasMlpDepth >= 1, "dynamic_pos_bias_mlp_depth", "must be at least 1");
        Check(!(RotaryXpos && !IsCausal), "rotary_xpos", "xPos is not compatible with bidirectional attention (Decoder only)");
        Check(RotaryXposScaleBase > 0, "rotary_xpos_scale_base", "must be positive");
        Check(!(SandwichNorm && ResiDual), "resi_dual", "either sandwich_norm or resi_dual, but not both");
        Check(ResiDualScale is > 0 and <= 1, "resi_dual_scale", "must be in (0, 1]");
        Check(SoftclampOutputValue > 0, "softclamp_output_value", "must be positive");
        // Named by the last of the three that is set, so a 0.20 config (no use_simple_rmsnorm) is pointed at its own key.
        Check(new[] { UseScalenorm, UseRmsnorm, UseSimpleRmsnorm }.Count(b => b) <= 1, UseSimpleRmsnorm ? "use_simple_rmsnorm" : "use_rmsnorm",
            "choose one of use_scalenorm, use_rmsnorm and use_simple_rmsnorm");
        Check(!(WeightTieLayers && !HasDefaultOrder), "weight_tie_layers", "cannot be combined with custom_layers, par_ratio or sandwich_coef");
        Check(RelPosNumBuckets <= RelPosMaxDistance, "rel_pos_num_buckets", "must be at most rel_pos_max_distance");
        Check(RelPosNumBuckets >= 2, "rel_pos_num_buckets", "must be at least 2");
        if (AlibiPosBias)
        {
            Check((AlibiNumHeads ?? Heads) <= Heads && (AlibiNumHeads ?? Heads) > 0, "alibi_num_heads", "must be between 1 and the number of heads");
            Check(IsCausal || IsV140, "alibi_pos_bias", "ALiBi works only with causal (Decoder) layers in x-transformers 0.20");
        }
        Check(PreNorm || !SandwichNorm, "sandwich_norm", "sandwich norm cannot be used when not using pre_norm");
        Check(RotaryEmbDim is null or > 0, "rotary_emb_dim", "must be positive");
        if (UsesRotary)
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
        if (UnetSkips)
        {
            int blockLen = HasDefaultOrder ? DefaultBlock().Length : 1;
            Check((WeightTieLayers ? 1 : Depth) / blockLen > 0, "unet_skips", "needs a depth of at least 2 (x-transformers' rule)");
            UnetSkipSources(prefix);
        }
    }

    /// <summary>Rotary dimension as x-transformers computes it: <c>max(rotary_emb_dim ?? dim_head/2, 32)</c>.</summary>
    public int RotaryLength => Math.Max(RotaryEmbDim ?? Attn.DimHead / 2, 32);
}
