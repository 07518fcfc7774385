namespace TransformerForge.Config;

/// <summary>
/// The <c>attn_*</c> options: how every attention block of a layer stack is built. x-transformers collects the
/// <c>attn_</c>-prefixed keywords of <c>AttentionLayers</c> and hands them, prefix trimmed, to each <c>Attention</c>;
/// this record is that bundle. Its rows are spliced into <see cref="AttentionLayersConfig.Table"/> (the JSON keys stay
/// flat in the layer object) and the record reaches <c>Modules.Attention</c> as it is. Adding an option: a property,
/// a table row, a check in <see cref="Validate"/> if it has a range, and its use in <c>Attention</c>. Rows marked
/// <c>Only(V1_40)</c> are x-transformers 1.40's; <c>Only(V0_20)</c> ones were removed after 0.20.
/// </summary>
public sealed record AttentionOptions
{
    /// <summary>The x-transformers version whose layout and numerics the block follows (set by the layer stack, not a JSON key).</summary>
    public XTransformersVersion Version { get; init; }
    /// <summary>Whether this block follows x-transformers 1.40 (see <see cref="XTransformersVersion"/>).</summary>
    public bool IsV140 => Version == XTransformersVersion.V1_40;
    /// <summary>Width of each head (<c>attn_dim_head</c>).</summary>
    public int DimHead { get; init; } = 64;
    /// <summary>Dropout on the attention weights.</summary>
    public double Dropout { get; init; }
    /// <summary>Talking heads (Shazeer et al. 2020): heads mixed before and after the softmax (0.20's single switch).</summary>
    public bool TalkingHeads { get; init; }
    /// <summary>1.40's talking heads before the softmax: scores plus a learned mix of the heads' scores (starts at identity).</summary>
    public bool PreTalkingHeads { get; init; }
    /// <summary>1.40's talking heads after the softmax: the heads' attention weights mixed by a learned matrix.</summary>
    public bool PostTalkingHeads { get; init; }
    /// <summary>Grouped-query attention (Ainslie et al. 2023): this many key/value heads, each shared by heads / kv_heads query heads.</summary>
    public int? KvHeads { get; init; }
    /// <summary>Multi-query attention (Shazeer 2019): one key/value head shared by every query head.</summary>
    public bool OneKvHead { get; init; }
    /// <summary>Query-key normalisation (Henry et al. 2020; Dehghani et al. 2023): l2-normalised queries and keys, scores times a fixed scale.</summary>
    public bool QkNorm { get; init; }
    /// <summary>Groups per head that are normalised separately.</summary>
    public int QkNormGroups { get; init; } = 1;
    /// <summary>The scale on normalised scores (x-transformers' default 10).</summary>
    public double QkNormScale { get; init; } = 10;
    /// <summary>A learned scale per head and feature on the normalised queries and keys (Dehghani et al. 2023, ViT-22B).</summary>
    public bool QkNormDimScale { get; init; }
    /// <summary>Soft-capped scores (Gemma 2): value · tanh(scores / value) before the softmax.</summary>
    public bool SoftclampLogits { get; init; }
    public double LogitSoftclampValue { get; init; } = 50;
    /// <summary>Per-head output gates (Bondarenko et al. 2023, "Quantizable Transformers"): each head's output times a sigmoid of the input.</summary>
    public bool GateValueHeads { get; init; }
    /// <summary>NormFormer's learned per-head scale on the attention output (Shleifer et al. 2021).</summary>
    public bool HeadScale { get; init; }
    /// <summary>Collaborative heads (Cordonnier et al. 2020): one shared key projection, mixed per head.</summary>
    public bool CollabHeads { get; init; }
    public double CollabCompression { get; init; } = 0.3;
    /// <summary>Explicit sparse attention (Zhao et al. 2019): keep the top-k scores of each query.</summary>
    public int? SparseTopk { get; init; }
    /// <summary>1.5-entmax instead of softmax (Peters et al. 2019).</summary>
    public bool UseEntmax15 { get; init; }
    /// <summary>Persistent memory (Sukhbaatar et al. 2019): learned key/value pairs every query may attend to.</summary>
    public int NumMemKv { get; init; }
    /// <summary>Attention on attention (Huang et al. 2019): a GLU on the output projection.</summary>
    public bool OnAttn { get; init; }
    /// <summary>Value gates (AlphaFold2, Jumper et al. 2021): each head's output gated by a sigmoid of the input.</summary>
    public bool GateValues { get; init; }
    /// <summary>A query sees at most this many positions back (null: no limit).</summary>
    public int? MaxAttendPast { get; init; }
    /// <summary>Primer's Multi-DConv-Head Attention (So et al. 2021): a causal depth-wise convolution after each q/k/v projection.</summary>
    public bool Dconv { get; init; }
    public int DconvKernelSize { get; init; } = 3;
    /// <summary>Kernels shared by the heads (labml: dim_head kernels) instead of one per projected channel (the paper).</summary>
    public bool DconvSharedHeads { get; init; }
    /// <summary>A bias on the query, key and value projections (labml's Primer; x-transformers has none).</summary>
    public bool QkvBias { get; init; }

    public static readonly OptionTable<AttentionOptions> Table = new OptionTable<AttentionOptions>()
        .Int("attn_dim_head", o => o.DimHead, (o, v) => o with { DimHead = v })
        .Double("attn_dropout", o => o.Dropout, (o, v) => o with { Dropout = v })
        .Bool("attn_talking_heads", o => o.TalkingHeads, (o, v) => o with { TalkingHeads = v }).Only(XTransformersVersion.V0_20)
        .Bool("attn_pre_talking_heads", o => o.PreTalkingHeads, (o, v) => o with { PreTalkingHeads = v }).Only(XTransformersVersion.V1_40)
        .Bool("attn_post_talking_heads", o => o.PostTalkingHeads, (o, v) => o with { PostTalkingHeads = v }).Only(XTransformersVersion.V1_40)
        .Bool("attn_head_scale", o => o.HeadScale, (o, v) => o with { HeadScale = v })
        .Bool("attn_collab_heads", o => o.CollabHeads, (o, v) => o with { CollabHeads = v }).Only(XTransformersVersion.V0_20)
        .Double("attn_collab_compression", o => o.CollabCompression, (o, v) => o with { CollabCompression = v }).Only(XTransformersVersion.V0_20)
        .OptInt("attn_sparse_topk", o => o.SparseTopk, (o, v) => o with { SparseTopk = v })
        .Bool("attn_use_entmax15", o => o.UseEntmax15, (o, v) => o with { UseEntmax15 = v }).Only(XTransformersVersion.V0_20)
        .OptInt("attn_kv_heads", o => o.KvHeads, (o, v) => o with { KvHeads = v }).Only(XTransformersVersion.V1_40)
        .Bool("attn_one_kv_head", o => o.OneKvHead, (o, v) => o with { OneKvHead = v }).Only(XTransformersVersion.V1_40)
        .Bool("attn_qk_norm", o => o.QkNorm, (o, v) => o with { QkNorm = v }).Only(XTransformersVersion.V1_40)
        .Int("attn_qk_norm_groups", o => o.QkNormGroups, (o, v) => o with { QkNormGroups = v }).Only(XTransformersVersion.V1_40)
        .Double("attn_qk_norm_scale", o => o.QkNormScale, (o, v) => o with { QkNormScale = v }).Only(XTransformersVersion.V1_40)
        .Bool("attn_qk_norm_dim_scale", o => o.QkNormDimScale, (o, v) => o with { QkNormDimScale = v }).Only(XTransformersVersion.V1_40)
        .Bool("attn_softclamp_logits", o => o.SoftclampLogits, (o, v) => o with { SoftclampLogits = v }).Only(XTransformersVersion.V1_40)
        .Double("attn_logit_softclamp_value", o => o.LogitSoftclampValue, (o, v) => o with { LogitSoftclampValue = v }).Only(XTransformersVersion.V1_40)
        .Bool("attn_gate_value_heads", o => o.GateValueHeads, (o, v) => o with { GateValueHeads = v }).Only(XTransformersVersion.V1_40)
        .Int("attn_num_mem_kv", o => o.NumMemKv, (o, v) => o with { NumMemKv = v })
        .Bool("attn_on_attn", o => o.OnAttn, (o, v) => o with { OnAttn = v })
        .Bool("attn_gate_values", o => o.GateValues, (o, v) => o with { GateValues = v })
        .OptInt("attn_max_attend_past", o => o.MaxAttendPast, (o, v) => o with { MaxAttendPast = v })
        .Bool("attn_dconv", o => o.Dconv, (o, v) => o with { Dconv = v })
        .Int("attn_dconv_kernel_size", o => o.DconvKernelSize, (o, v) => o with { DconvKernelSize = v })
        .Bool("attn_dconv_shared_heads", o => o.DconvSharedHeads, (o, v) => o with { DconvSharedHeads = v })
        .Bool("attn_qkv_bias", o => o.QkvBias, (o, v) => o with { QkvBias = v });

    /// <summary>
    /// The checks that need only these options and the head count; each names its key under <paramref name="prefix"/>
    /// (e.g. <c>attn_layers.</c>). <c>Attention</c> runs them too, so a block built in C# is checked the same way.
    /// </summary>
    public void Validate(int heads, string prefix = "")
    {
        void Check(bool ok, string key, string message)
        {
            if (!ok) throw new ConfigException(prefix + key, message);
        }
        Table.CheckVersion(this, new AttentionOptions { Version = Version }, Version, prefix);
        Check(heads > 0, "heads", "must be a positive integer");
        Check(DimHead > 0, "attn_dim_head", "must be a positive integer");
        // Projection widths are ints in the modules: check the product before anything multiplies it unchecked.
        Check((long)heads * DimHead <= int.MaxValue, "attn_dim_head", $"heads × attn_dim_head = {(long)heads * DimHead} exceeds {int.MaxValue}");
        Check(Dropout is >= 0 and < 1, "attn_dropout", "must be in [0, 1)");
        Check(NumMemKv >= 0, "attn_num_mem_kv", "must not be negative");
        Check(SparseTopk is null or > 0, "attn_sparse_topk", "must be positive");
        Check(MaxAttendPast is null or >= 0, "attn_max_attend_past", "must not be negative");
        Check(CollabCompression is > 0 and <= 1, "attn_collab_compression", "must be in (0, 1]");
        Check(!(CollabHeads && (int)(CollabCompression * DimHead * heads) < 1), "attn_collab_compression", "leaves no query/key dimension");
        Check(!(CollabHeads && NumMemKv > 0 && (int)(CollabCompression * DimHead * heads) != DimHead), "attn_num_mem_kv",
            $"memory keys have attn_dim_head ({DimHead}) features but attn_collab_heads' shared key has attn_collab_compression × heads × attn_dim_head = {(int)(CollabCompression * DimHead * heads)}; x-transformers 0.20 cannot combine them either");
        Check(DconvKernelSize >= 1, "attn_dconv_kernel_size", "must be at least 1");
        Check(!(Dconv && CollabHeads), "attn_dconv", "depth-wise convolutions cannot be combined with attn_collab_heads (the query width differs per head)");
        Check(!(KvHeads is not null && OneKvHead), "attn_kv_heads",
            "either attn_one_kv_head is set (one key/value head) or attn_kv_heads is, but not both");
        Check(KvHeads is null or > 0, "attn_kv_heads", "must be a positive integer");
        Check(heads % KeyValueHeads(heads) == 0, "attn_kv_heads", $"must divide heads ({heads}): each key/value head serves the same number of query heads");
        Check(QkNormGroups > 0, "attn_qk_norm_groups", "must be a positive integer");
        if (QkNorm)
        {
            Check(DimHead % QkNormGroups == 0, "attn_qk_norm_groups", $"must divide attn_dim_head ({DimHead})");
            Check(DimHead / QkNormGroups > 2, "attn_qk_norm_groups", "leaves groups of 2 features or fewer (x-transformers rejects them as too small)");
        }
        Check(QkNormScale > 0, "attn_qk_norm_scale", "must be positive");
        Check(LogitSoftclampValue > 0, "attn_logit_softclamp_value", "must be positive");
    }

    /// <summary>Key/value heads: 1 with <c>attn_one_kv_head</c>, else <c>attn_kv_heads</c>, else one per query head.</summary>
    public int KeyValueHeads(int heads) => OneKvHead ? 1 : KvHeads ?? heads;
}
