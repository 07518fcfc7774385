using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Config;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Multi-head attention (Vaswani et al. 2017) with x-transformers' options, each from its paper: persistent memory
/// key/values (all-attention, Sukhbaatar et al. 2019), talking heads (Shazeer et al. 2020), collaborative heads
/// (Cordonnier et al. 2020), top-k sparse attention (Zhao et al. 2019), entmax 1.5 (Peters et al. 2019),
/// attention on attention (Huang et al. 2019), value gating (AlphaFold2), head scaling (NormFormer), residual attention
/// (RealFormer, He et al. 2020), multi-DConv-head attention (Primer, So et al. 2021; labml's layout and q/k/v biases
/// are options, so labml's Primer runs through this class too); and x-transformers 1.40's: grouped-query and
/// multi-query attention (Ainslie et al. 2023; Shazeer 2019), query-key normalisation (Henry et al. 2020), soft-capped
/// scores (Gemma 2), per-head output gates (Bondarenko et al. 2023), value residuals (Zhou et al. 2024, ResFormer),
/// pre- and post-softmax talking heads. Whenever no option needs the score matrix itself, the scores run through
/// libtorch's fused scaled_dot_product_attention.
/// <para>
/// Parameters (x-transformers' names): <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out</c> (1.40: no biases); with
/// options <c>to_{q,k,v}_dconv</c>, <c>to_v_gate</c>, <c>to_v_head_gate</c>, <c>collab_mixing</c>,
/// <c>pre_softmax_proj</c>, <c>post_softmax_proj</c> (0.20), <c>attend.{pre,post}_softmax_talking_heads</c> (1.40),
/// <c>qk_norm_{q,k}_scale</c>, <c>head_scale_params</c>, <c>mem_k</c>, <c>mem_v</c>.
/// </para>
/// </summary>
public sealed class Attention : Block
{
    readonly AttentionOptions _o;
    readonly int _heads, _kvHeads;
    readonly bool _causal, _v140;
    readonly double _scale;
    readonly Linear _toQ, _toK, _toV;
    readonly Linear? _toVGate, _toVHeadGate;
    readonly nn.Module<Tensor, Tensor> _toOut;
    readonly OptionalDropout _dropout;
    readonly CausalDepthwiseConv1d? _qConv, _kConv, _vConv;
    readonly Conv2d? _preTalkingHeads, _postTalkingHeads;

    /// <param name="dim">Model width (input and output).</param>
    /// <param name="heads">Number of heads.</param>
    /// <param name="causal">Queries never see later keys (a decoder's self-attention).</param>
    /// <param name="options">The <c>attn_*</c> options, as configured (their <c>Version</c> picks 0.20's or 1.40's layout and numerics).</param>
    /// <param name="zeroInitOutput">The output projection starts at zero (<c>zero_init_branch_output</c>).</param>
    public Attention(int dim, int heads, bool causal, AttentionOptions options, bool zeroInitOutput = false) : base(nameof(Attention))
    {
        options.Validate(heads);
        _o = options;
        _v140 = options.IsV140;
        _heads = heads;
        _kvHeads = options.KeyValueHeads(heads);
        _causal = causal;
        // Query-key normalised scores are cosine similarities times a fixed scale instead of dot products / √d.
        _scale = options.QkNorm ? options.QkNormScale : Math.Pow(options.DimHead, -0.5);
        int qkDim = options.DimHead * heads, kvDim = options.DimHead * _kvHeads, outDim = options.DimHead * heads;

        if (options.CollabHeads)
        {
            qkDim = (int)(options.CollabCompression * qkDim);
            kvDim = qkDim;
            Param("collab_mixing", randn(heads, qkDim));
        }

        // One place for the q/k/v projections (a fused projection can replace them behind the same names).
        _toQ = Module("to_q", nn.Linear(dim, qkDim, hasBias: options.QkvBias));
        _toK = Module("to_k", nn.Linear(dim, kvDim, hasBias: options.QkvBias));
        _toV = Module("to_v", nn.Linear(dim, options.CollabHeads ? outDim : options.DimHead * _kvHeads, hasBias: options.QkvBias));
        _dropout = Module("dropout", new OptionalDropout(options.Dropout));
        if (options.Dconv)
        {
            // Shared by heads: dim_head kernels, each applied to its channel in every head (labml); else one per channel.
            int Channels(int width) => options.DconvSharedHeads ? options.DimHead : width;
            _qConv = Module("to_q_dconv", new CausalDepthwiseConv1d(Channels(qkDim), options.DconvKernelSize));
            _kConv = Module("to_k_dconv", new CausalDepthwiseConv1d(Channels(kvDim), options.DconvKernelSize));
            _vConv = Module("to_v_dconv", new CausalDepthwiseConv1d(Channels(options.DimHead * _kvHeads), options.DconvKernelSize));
        }

        if (options.GateValues)
        {
            // Gates start open (weight 0; bias 1 in 0.20, 10 in 1.40), so the block starts as plain attention.
            _toVGate = Module("to_v_gate", nn.Linear(dim, outDim));
            Init.Fill(_toVGate.weight!, 0);
            Init.Fill(_toVGate.bias!, _v140 ? 10 : 1);
        }
        if (options.GateValueHeads)
        {
            _toVHeadGate = Module("to_v_head_gate", nn.Linear(dim, heads));
            Init.Fill(_toVHeadGate.weight!, 0);
            Init.Fill(_toVHeadGate.bias!, 10);
        }
        if (options.TalkingHeads)
        {
            Param("pre_softmax_proj", randn(heads, heads));
            Param("post_softmax_proj", randn(heads, heads));
        }
        if (options.PreTalkingHeads || options.PostTalkingHeads)
        {
            // 1.40 keeps them in its Attend module as 1x1 convolutions over heads, initialised to the identity.
            _preTalkingHeads = options.PreTalkingHeads ? HeadMixer(heads) : null;
            _postTalkingHeads = options.PostTalkingHeads ? HeadMixer(heads) : null;
            Module("attend", new ModuleSlots(("pre_softmax_talking_heads", _preTalkingHeads), ("post_softmax_talking_heads", _postTalkingHeads)));
        }
        if (options.QkNorm && options.QkNormDimScale)
        {
            Param("qk_norm_q_scale", ones(heads, 1, options.DimHead));
            Param("qk_norm_k_scale", ones(_kvHeads, 1, options.DimHead));
        }
        if (options.HeadScale) Param("head_scale_params", ones(1, heads, 1, 1));
        if (options.NumMemKv > 0)
        {
            int memHeads = _v140 ? _kvHeads : heads;
            Param("mem_k", randn(memHeads, options.NumMemKv, options.DimHead));
            Param("mem_v", randn(memHeads, options.NumMemKv, options.DimHead));
        }

        var proj = nn.Linear(outDim, options.OnAttn ? dim * 2 : dim, hasBias: !_v140);
        _toOut = options.OnAttn ? Module("to_out", nn.Sequential(proj, nn.GLU(-1))) : Module("to_out", proj);
        if (zeroInitOutput) Init.Zero(proj);
    }

    public AttentionOptions Options => _o;
    public int Heads => _heads;
    /// <summary>Key/value heads: fewer than <see cref="Heads"/> with grouped- or multi-query attention.</summary>
    public int KvHeads => _kvHeads;
    public bool Causal => _causal;

    // Parameters are looked up by name: Module.to() replaces them when converting dtype or device.
    Parameter? CollabMixing => get_parameter("collab_mixing");
    Parameter? PreSoftmaxProj => get_parameter("pre_softmax_proj");
    Parameter? PostSoftmaxProj => get_parameter("post_softmax_proj");
    Parameter? QkNormQScale => get_parameter("qk_norm_q_scale");
    Parameter? QkNormKScale => get_parameter("qk_norm_k_scale");
    Parameter? HeadScale => get_parameter("head_scale_params");
    Parameter? MemK => get_parameter("mem_k");
    Parameter? MemV => get_parameter("mem_v");

    T Module<T>(string name, T m) where T : nn.Module
    {
        register_module(name, m);
        return m;
    }

    void Param(string name, Tensor init) => register_parameter(name, new Parameter(init));

    static Conv2d HeadMixer(int heads)
    {
        var conv = nn.Conv2d(heads, heads, 1, bias: false);
        using (no_grad()) conv.weight!.copy_(eye(heads).reshape(heads, heads, 1, 1));
        return conv;
    }

    public override BlockOutput Forward(Tensor x, BlockInputs inputs)
    {
        using var scope = NewDisposeScope();
        bool isCross = inputs.Context is not null;
        var positions = isCross ? null : inputs.Positions;

        // 1. Project queries, keys and values: q [b, h, n, d], k and v [b, kv_heads, n, d] (1.40: keys and queries normalised).
        var (q, k, v) = isCross ? ProjectContext(x, inputs) : ProjectSelf(x, inputs);

        // 2. Positions that rotate queries and keys (rotary), then 3. keys and values join the cache.
        if (!isCross)
        {
            (q, k, v) = Rotate(q, k, v, positions);
            if (inputs.Cache is { } cache) (k, v) = cache.Append(k, v);
        }
        long i = q.shape[2], keysWithoutMemory = k.shape[2];
        (k, v) = WithPersistentMemory(k, v, x.shape[0]);
        long j = k.shape[2];
        // 1.40's value residual (ResFormer): the first layer's values added to this layer's (cached values stay raw).
        if (inputs.ValueResidual is { } firstValues) v = v + firstValues;
        var values = inputs.NeedValues ? v.alias() : null;

        // 4. What each query may not see, and the additive position bias (T5, ALiBi, dynamic): shared by both paths.
        // 0.20 measures positions over every key, persistent memory included; 1.40 over the others, memory bias 0.
        var mask = AttentionMask.Build(inputs, isCross, _causal, _o.MaxAttendPast, _o.NumMemKv, x.shape[0], i, j, x.device, _v140);
        var bias = PositionBias(positions, i, _v140 ? keysWithoutMemory : j, x.device, x.dtype);
        if (_v140 && bias is not null && _o.NumMemKv > 0) bias = nn.functional.pad(bias, new long[] { _o.NumMemKv, 0 });

        // 5. Scores and weighted values: libtorch's fused kernel, or step by step where an option needs the scores.
        Tensor outHeads;
        Tensor? preSoftmax = null, postSoftmax = null;
        if (UsesFusedKernel(inputs, j, x.dtype)) outHeads = FusedAttention(q, k, v, mask, bias);
        else (outHeads, preSoftmax, postSoftmax) = ExplicitAttention(q, k, v, mask, bias, inputs.PrevAttn);
        // 1.40 zeroes the output of a query that may see no key at all (padding), instead of spreading it uniformly.
        if (_v140 && mask.Masked is { } hidden) outHeads = outHeads.masked_fill(hidden.all(-1, keepdim: true), 0.0);

        // 6. Combine the heads into the output.
        var output = Combine(outHeads, x, inputs.Mask, inputs.Cache).MoveToOuterDisposeScope();
        values?.MoveToOuterDisposeScope();
        return inputs.NeedAttention
            ? new BlockOutput(output, preSoftmax!.MoveToOuterDisposeScope(), postSoftmax!.MoveToOuterDisposeScope(), values)
            : new BlockOutput(output, Values: values);
    }

    /// <summary>
    /// Self-attention: queries from x; keys and values from this layer's Transformer-XL memory followed by x. With
    /// position-infused attention (Shortformer) positions go into queries and keys only, not values; with Primer's
    /// depth-wise convolutions each projected position also mixes in the (kernel - 1) positions before it.
    /// </summary>
    (Tensor Q, Tensor K, Tensor V) ProjectSelf(Tensor x, BlockInputs inputs)
    {
        var cache = inputs.Cache;
        var kvInput = inputs.Mem is { } mem ? cat(new[] { mem, x }, 1) : x;
        var (qInput, kInput) = (x, kvInput);
        if (inputs.Positions?.Pia is { } pia)
        {
            long cached = cache?.Length ?? 0, n = x.shape[1], keys = kInput.shape[1];
            qInput = qInput + pia.Forward(n, cached + keys - n, x.dtype);
            kInput = kInput + pia.Forward(keys, cached, x.dtype);
        }
        // Queries, keys and values from the same input: one matmul against the three weights side by side.
        var (q, k, v) = ReferenceEquals(qInput, kvInput) && ReferenceEquals(kInput, kvInput)
            ? ProjectFused(x, cache)
            : (_toQ.forward(qInput), _toK.forward(kInput), _toV.forward(kvInput));
        if (_qConv is not null)
        {
            q = DConv(_qConv, q, cache, CacheHistory.QueryConv);
            k = DConv(_kConv!, k, cache, CacheHistory.KeyConv);
            v = DConv(_vConv!, v, cache, CacheHistory.ValueConv);
        }
        return (NormQ(SplitQ(q)), NormK(SplitK(k)), SplitHeads(v, _kvHeads));
    }

    /// <summary>
    /// q, k and v of one input by a single matmul against [W_q; W_k; W_v] (one kernel instead of three, and a larger,
    /// more efficient one), split along the features. The parameters stay x-transformers' to_q / to_k / to_v; the
    /// stacked weight is built per call while training (autograd splits its gradient back), and once per decoding run
    /// (kept in the layer's cache, see <see cref="LayerCache.Linear(LayerCache?, string, Tensor, Func{Tensor}, Func{Tensor?})"/>)
    /// when generating, since the weights do not change then.
    /// </summary>
    (Tensor Q, Tensor K, Tensor V) ProjectFused(Tensor x, LayerCache? cache)
    {
        long qd = _toQ.weight!.shape[0], kd = _toK.weight!.shape[0], vd = _toV.weight!.shape[0];
        var qkv = LayerCache.Linear(cache, "fused_qkv", x,
            () => cat(new[] { _toQ.weight!, _toK.weight!, _toV.weight! }, 0),
            () => _toQ.bias is null ? null : cat(new[] { _toQ.bias, _toK.bias!, _toV.bias! }, 0));
        // Grouped-query attention: keys and values are narrower than queries.
        return (qkv.narrow(-1, 0, qd), qkv.narrow(-1, qd, kd), qkv.narrow(-1, qd + kd, vd));
    }

    /// <summary>Cross-attention: queries from x; keys and values from the context, projected once per cache.</summary>
    (Tensor Q, Tensor K, Tensor V) ProjectContext(Tensor x, BlockInputs inputs)
    {
        var q = NormQ(SplitQ(_toQ.forward(x)));
        if (inputs.Cache?.Context is (Tensor cachedK, Tensor cachedV)) return (q, cachedK, cachedV);
        var context = inputs.Context!;
        var (k, v) = (NormK(SplitK(_toK.forward(context))), SplitHeads(_toV.forward(context), _kvHeads));
        inputs.Cache?.SetContext(k, v);
        return (q, k, v);
    }

    /// <summary>Query-key normalisation (1.40): l2-normalised per group of features, then the learned per-feature scale.</summary>
    Tensor NormQ(Tensor q) => _o.QkNorm ? L2Norm(q, _o.QkNormGroups) * (QkNormQScale is { } s ? s : 1.0) : q;

    Tensor NormK(Tensor k) => _o.QkNorm ? L2Norm(k, _o.QkNormGroups) * (QkNormKScale is { } s ? s : 1.0) : k;

    static Tensor L2Norm(Tensor t, int groups)
    {
        if (groups == 1) return nn.functional.normalize(t, p: 2, dim: -1);
        var grouped = t.unflatten(t.dim() - 1, new long[] { groups, t.shape[^1] / groups });
        return nn.functional.normalize(grouped, p: 2, dim: -1).flatten(-2);
    }

    /// <summary>
    /// Rotary embeddings (RoFormer): the first l features rotated by their absolute positions; 0.20 rotates queries,
    /// keys and values (feature halves), 1.40 queries and keys (neighbouring pairs), with xPos scales when configured.
    /// </summary>
    (Tensor Q, Tensor K, Tensor V) Rotate(Tensor q, Tensor k, Tensor v, PositionInputs? positions)
    {
        if (positions?.RotaryFreqs is not { } freqs) return (q, k, v);
        var xpos = positions.XposScale;
        if (!_v140) return (RotaryPrefix(q, freqs, false, null), RotaryPrefix(k, freqs, false, null), RotaryPrefix(v, freqs, false, null));
        return (RotaryPrefix(q, freqs, true, xpos), RotaryPrefix(k, freqs, true, xpos?.reciprocal()), v);
    }

    /// <summary>Persistent memory (all-attention): learned key/values before all others, for every query.</summary>
    (Tensor K, Tensor V) WithPersistentMemory(Tensor k, Tensor v, long b)
    {
        if (MemK is not null)
        {
            var memK = MemK.unsqueeze(0).expand(b, -1, -1, -1);
            // 1.40 normalises the memory keys like the others (over the whole head, and with the learned scale).
            if (_o.QkNorm) memK = nn.functional.normalize(memK, p: 2, dim: -1) * (QkNormKScale is { } s ? s : 1.0);
            k = cat(new[] { memK, k.expand(b, _o.CollabHeads ? _heads : k.shape[1], -1, -1) }, 2);
            v = cat(new[] { MemV!.unsqueeze(0).expand(b, -1, -1, -1), v }, 2);
        }
        // Collaborative heads share one key per position; each head mixes its own query.
        return (_o.CollabHeads ? k.expand(-1, _heads, -1, -1) : k, v);
    }

    /// <summary>1.40 takes the softmax in float32 (unless queries and keys are normalised, or top-k is on), whatever the model's precision.</summary>
    bool SoftmaxInFloat32 => _v140 && !_o.QkNorm && _o.SparseTopk is null;

    /// <summary>
    /// Whether a call with <paramref name="inputs"/> over <paramref name="keys"/> keys runs libtorch's fused kernel:
    /// unless an option needs the score matrix itself (talking heads, collaborative heads, entmax, top-k below the key
    /// count, soft-capped scores, residual attention, returned attention maps), or 1.40's float32 softmax would differ
    /// from the kernel's (float64 models). Every mask and position bias goes through either path.
    /// </summary>
    public bool UsesFusedKernel(BlockInputs inputs, long keys, ScalarType dtype = ScalarType.Float32) =>
        !inputs.NeedAttention && inputs.PrevAttn is null && !_o.TalkingHeads && !_o.CollabHeads && !_o.UseEntmax15
        && !_o.PreTalkingHeads && !_o.PostTalkingHeads && !_o.SoftclampLogits
        && (_o.SparseTopk is null || _o.SparseTopk >= keys)
        && !(SoftmaxInFloat32 && dtype == ScalarType.Float64);

    /// <summary>
    /// libtorch's fused attention: the mask and bias become one additive mask, or the causal flag alone. Its scale is
    /// always 1/√d, so a different one (qk-norm's) is folded into the queries, as 1.40's flash path does. Grouped
    /// key/value heads are not repeated: the query heads that share one are stacked along the sequence instead.
    /// </summary>
    Tensor FusedAttention(Tensor q, Tensor k, Tensor v, AttentionMask mask, Tensor? bias)
    {
        long d = q.shape[^1];
        if (_o.QkNorm) q = q * (_scale * Math.Sqrt(d));
        bool isCausal = bias is null && mask.IsPlainCausal;
        Tensor? additive = bias;
        if (!isCausal && mask.Hidden(q.device) is { } hidden)
            additive = (bias ?? zeros(1, 1, mask.Queries, mask.Keys, dtype: q.dtype, device: q.device)).masked_fill(hidden, FusedMaskValue(q.dtype));
        double dropout = training ? _o.Dropout : 0.0;
        if (k.shape[1] == q.shape[1]) return nn.functional.scaled_dot_product_attention(q, k, v, additive, dropout, isCausal);

        // Grouped-query attention without copying keys: head h uses key/value head h % kv_heads (x-transformers'
        // repeat order), so queries [b, (r g), n, d] become [b, g, (r n), d] and each group attends once.
        long b = q.shape[0], n = q.shape[2], g = k.shape[1], r = q.shape[1] / g;
        var grouped = q.unflatten(1, new long[] { r, g }).transpose(1, 2).reshape(b, g, r * n, d);
        if (isCausal) additive = CausalMaskAsBias(n, k.shape[2], q.dtype, q.device);
        var groupedMask = additive is null ? null : GroupHeads(additive.expand(additive.shape[0], q.shape[1], n, k.shape[2]), g, r);
        var outGrouped = nn.functional.scaled_dot_product_attention(grouped, k, v, groupedMask, dropout, false);
        return outGrouped.reshape(b, g, r, n, d).transpose(1, 2).reshape(b, r * g, n, d);
    }

    /// <summary>[b, (r g), i, j] → [b, g, (r i), j]: per-head tensors in the grouped layout of <see cref="FusedAttention"/>.</summary>
    static Tensor GroupHeads(Tensor t, long g, long r) =>
        t.unflatten(1, new long[] { r, g }).transpose(1, 2).reshape(t.shape[0], g, r * t.shape[2], t.shape[3]);

    static Tensor CausalMaskAsBias(long i, long j, ScalarType dtype, Device device)
    {
        var hidden = ones(i, j, dtype: ScalarType.Bool, device: device).triu(j - i + 1);
        return zeros(1, 1, i, j, dtype: dtype, device: device).masked_fill(hidden, FusedMaskValue(dtype));
    }

    /// <summary>
    /// The score matrix step by step, as x-transformers computes it; also returns the pre- and post-softmax maps.
    /// 0.20: scores, residual attention, (pre-softmax map), talking heads, bias, masks, top-k, softmax or entmax.
    /// 1.40: scores, residual attention, talking heads (added to the scores), bias, soft cap, masks, (pre-softmax
    /// map), top-k, softmax in float32 unless qk-norm.
    /// </summary>
    (Tensor Out, Tensor PreSoftmax, Tensor PostSoftmax) ExplicitAttention(Tensor q, Tensor k, Tensor v, AttentionMask mask, Tensor? bias, Tensor? prevAttn)
    {
        var dots = Scores(q, k) * _scale;
        if (prevAttn is not null) dots = dots + prevAttn;
        Tensor? preSoftmax = _v140 ? null : dots.clone();
        if (PreSoftmaxProj is not null) dots = einsum("bhij,hk->bkij", dots, PreSoftmaxProj).contiguous();
        if (_preTalkingHeads is not null) dots = dots + MixHeads(dots, _preTalkingHeads);
        if (bias is not null) dots = dots + bias;
        if (_o.SoftclampLogits) dots = (dots / _o.LogitSoftclampValue).tanh() * _o.LogitSoftclampValue;
        var maskValue = MaxNeg(dots.dtype);
        if (mask.Hidden(q.device) is { } hidden) dots = dots.masked_fill(hidden, maskValue);
        preSoftmax ??= dots;
        if (_o.SparseTopk is { } topk && topk < dots.shape[^1])
        {
            var (top, _) = dots.topk(topk, -1);
            var threshold = top.narrow(-1, topk - 1, 1).expand_as(dots);
            dots = dots.masked_fill(dots.lt(threshold), maskValue);
        }

        var attn = _o.UseEntmax15 ? Entmax15.Apply(dots, -1)
            : SoftmaxInFloat32 ? dots.softmax(-1, ScalarType.Float32).to_type(dots.dtype)
            : dots.softmax(-1);
        var postSoftmax = _v140 ? attn : attn.clone();
        attn = _dropout.forward(attn);
        if (PostSoftmaxProj is not null) attn = einsum("bhij,hk->bkij", attn, PostSoftmaxProj).contiguous();
        if (_postTalkingHeads is not null) attn = MixHeads(attn, _postTalkingHeads);
        return (WeightedValues(attn, v), preSoftmax, postSoftmax);
    }

    /// <summary>Scores [b, h, i, j]; with grouped key/value heads each group's keys serve its query heads without being repeated.</summary>
    static Tensor Scores(Tensor q, Tensor k)
    {
        if (k.shape[1] == q.shape[1]) return einsum("bhid,bhjd->bhij", q, k);
        long g = k.shape[1], r = q.shape[1] / g;
        var grouped = q.unflatten(1, new long[] { r, g });                                // head h = (h / g, h % g)
        return einsum("brgid,bgjd->brgij", grouped, k).flatten(1, 2);
    }

    static Tensor WeightedValues(Tensor attn, Tensor v)
    {
        if (v.shape[1] == attn.shape[1]) return einsum("bhij,bhjd->bhid", attn, v);
        long g = v.shape[1], r = attn.shape[1] / g;
        return einsum("brgij,bgjd->brgid", attn.unflatten(1, new long[] { r, g }), v).flatten(1, 2);
    }

    /// <summary>1.40's talking heads: a 1x1 convolution over heads, i.e. each output head a learned mix of all heads.</summary>
    static Tensor MixHeads(Tensor t, Conv2d mixer) =>
        einsum("bhij,kh->bkij", t, mixer.weight!.flatten(1)).contiguous();

    /// <summary>Causal depth-wise convolution over the sequence, continuing from the cached last positions when decoding.</summary>
    static Tensor DConv(CausalDepthwiseConv1d conv, Tensor x, LayerCache? cache, CacheHistory slot)
    {
        var (output, history) = conv.Forward(x, cache?.History(slot));
        cache?.KeepHistory(slot, history);
        return output;
    }

    /// <summary>
    /// Head scaling, per-head gates (1.40), merge heads, value gates, output projection; 1.40 then zeroes the output of
    /// padding queries (<paramref name="queryMask"/> false).
    /// </summary>
    Tensor Combine(Tensor outHeads, Tensor x, Tensor? queryMask, LayerCache? cache)
    {
        if (HeadScale is not null) outHeads = outHeads * HeadScale;
        if (_toVHeadGate is not null) outHeads = outHeads * _toVHeadGate.forward(x).sigmoid().transpose(1, 2).unsqueeze(-1);
        var (b, h, n, d) = (outHeads.shape[0], outHeads.shape[1], outHeads.shape[2], outHeads.shape[3]);
        var merged = outHeads.transpose(1, 2).reshape(b, n, h * d);
        if (_toVGate is not null) merged = merged * _toVGate.forward(x).sigmoid();
        var output = _toOut is Linear proj ? LayerCache.Linear(cache, "to_out", merged, proj) : _toOut.forward(merged);
        if (_v140 && queryMask is not null) output = output.masked_fill(queryMask.logical_not().unsqueeze(-1), 0.0);
        return output;
    }

    /// <summary>Queries per head; collaborative heads mix one shared query projection per head.</summary>
    Tensor SplitQ(Tensor q) =>
        _o.CollabHeads ? einsum("bid,hd->bhid", q, CollabMixing!) : SplitHeads(q, _heads);

    /// <summary>Keys per key/value head; collaborative heads keep a single key projection for all heads.</summary>
    Tensor SplitK(Tensor k) => _o.CollabHeads ? k.unsqueeze(1) : SplitHeads(k, _kvHeads);

    static Tensor SplitHeads(Tensor t, int heads) =>
        t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2);

    /// <summary>Rotates the first l features of t by the last t.shape[2] positions of freqs (and xPos scales).</summary>
    static Tensor RotaryPrefix(Tensor t, Tensor freqs, bool interleaved, Tensor? xpos)
    {
        long n = t.shape[2], l = freqs.shape[^1];
        var f = freqs.narrow(2, freqs.shape[2] - n, n);
        var s = xpos?.narrow(2, xpos.shape[2] - n, n);
        var left = RotaryEmbedding.Apply(t.narrow(-1, 0, l), f, interleaved, s);
        return t.shape[^1] == l ? left : cat(new[] { left, t.narrow(-1, l, t.shape[^1] - l) }, -1);
    }

    /// <summary>T5, ALiBi or dynamic position bias for i queries (the last i of j positions) x j keys, or null.</summary>
    Tensor? PositionBias(PositionInputs? pos, long i, long j, Device device, ScalarType dtype)
    {
        // 0.20 numbers T5 queries from the cache's start (0 with memories); 1.40 right-aligns them with the keys.
        if (pos?.T5 is { } t5) return t5.Forward(i, j, _v140 ? j - i : pos.QueryStart, device).to_type(dtype);
        if (pos?.Alibi is { } alibi) return _v140 ? alibi.ForwardDistance(_heads, i, j, device, dtype) : alibi.Forward(_heads, j, device, dtype);
        if (pos?.Dynamic is { } dynamic) return dynamic.Forward(i, j, device, dtype);
        return null;
    }

    /// <summary>
    /// Masked scores for the fused kernels. GPU kernels rescale scores (e.g. by log2 e) and would overflow the most negative
    /// float to -inf, turning fully masked rows (padding queries) into NaN or zeros; a value far below any real score
    /// but safely finite gives the same softmax: exactly 0 weight where masked, uniform weights on fully masked rows.
    /// </summary>
    static double FusedMaskValue(ScalarType dtype) => dtype == ScalarType.Float16 ? -30000.0 : -1e30;

    /// <summary>x-transformers masks with the most negative finite value, not -inf: fully masked rows become uniform, not NaN.</summary>
    internal static double MaxNeg(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => -double.MaxValue,
        ScalarType.Float16 => -65504.0,
        ScalarType.BFloat16 => -3.3895313892515355e38,
        _ => -float.MaxValue,
    };
}
