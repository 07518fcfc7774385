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
/// are options, so labml's Primer runs through this class too). Whenever no option needs the score matrix itself,
/// the scores run through libtorch's fused scaled_dot_product_attention.
/// <para>
/// Parameters (x-transformers' names): <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out</c>; with options
/// <c>to_{q,k,v}_dconv</c>, <c>to_v_gate</c>, <c>collab_mixing</c>, <c>pre_softmax_proj</c>, <c>post_softmax_proj</c>,
/// <c>head_scale_params</c>, <c>mem_k</c>, <c>mem_v</c>.
/// </para>
/// </summary>
public sealed class Attention : Block
{
    readonly AttentionOptions _o;
    readonly int _heads;
    readonly bool _causal;
    readonly double _scale;
    readonly Linear _toQ, _toK, _toV;
    readonly Linear? _toVGate;
    readonly nn.Module<Tensor, Tensor> _toOut;
    readonly Dropout _dropout;
    readonly CausalDepthwiseConv1d? _qConv, _kConv, _vConv;

    /// <param name="dim">Model width (input and output).</param>
    /// <param name="heads">Number of heads.</param>
    /// <param name="causal">Queries never see later keys (a decoder's self-attention).</param>
    /// <param name="options">The <c>attn_*</c> options, as configured.</param>
    /// <param name="zeroInitOutput">The output projection starts at zero (<c>zero_init_branch_output</c>).</param>
    public Attention(int dim, int heads, bool causal, AttentionOptions options, bool zeroInitOutput = false) : base(nameof(Attention))
    {
        options.Validate(heads);
        _o = options;
        _heads = heads;
        _causal = causal;
        _scale = Math.Pow(options.DimHead, -0.5);
        int qkDim = options.DimHead * heads, vDim = options.DimHead * heads;

        if (options.CollabHeads)
        {
            qkDim = (int)(options.CollabCompression * qkDim);
            Param("collab_mixing", randn(heads, qkDim));
        }

        _toQ = Module("to_q", nn.Linear(dim, qkDim, hasBias: options.QkvBias));
        _toK = Module("to_k", nn.Linear(dim, qkDim, hasBias: options.QkvBias));
        _toV = Module("to_v", nn.Linear(dim, vDim, hasBias: options.QkvBias));
        _dropout = Module("dropout", nn.Dropout(options.Dropout));
        if (options.Dconv)
        {
            // Shared by heads: dim_head kernels, each applied to its channel in every head (labml); else one per channel.
            int channels = options.DconvSharedHeads ? options.DimHead : qkDim;
            _qConv = Module("to_q_dconv", new CausalDepthwiseConv1d(channels, options.DconvKernelSize));
            _kConv = Module("to_k_dconv", new CausalDepthwiseConv1d(channels, options.DconvKernelSize));
            _vConv = Module("to_v_dconv", new CausalDepthwiseConv1d(channels, options.DconvKernelSize));
        }

        if (options.GateValues)
        {
            // Gates start fully open (weight 0, bias 1), so the block starts as plain attention.
            _toVGate = Module("to_v_gate", nn.Linear(dim, vDim));
            Init.Fill(_toVGate.weight!, 0);
            Init.Fill(_toVGate.bias!, 1);
        }
        if (options.TalkingHeads)
        {
            Param("pre_softmax_proj", randn(heads, heads));
            Param("post_softmax_proj", randn(heads, heads));
        }
        if (options.HeadScale) Param("head_scale_params", ones(1, heads, 1, 1));
        if (options.NumMemKv > 0)
        {
            Param("mem_k", randn(heads, options.NumMemKv, options.DimHead));
            Param("mem_v", randn(heads, options.NumMemKv, options.DimHead));
        }

        var proj = nn.Linear(vDim, options.OnAttn ? dim * 2 : dim);
        _toOut = options.OnAttn ? Module("to_out", nn.Sequential(proj, nn.GLU(-1))) : Module("to_out", proj);
        if (zeroInitOutput) Init.Zero(proj);
    }

    public AttentionOptions Options => _o;
    public int Heads => _heads;
    public bool Causal => _causal;

    // Parameters are looked up by name: Module.to() replaces them when converting dtype or device.
    Parameter? CollabMixing => get_parameter("collab_mixing");
    Parameter? PreSoftmaxProj => get_parameter("pre_softmax_proj");
    Parameter? PostSoftmaxProj => get_parameter("post_softmax_proj");
    Parameter? HeadScale => get_parameter("head_scale_params");
    Parameter? MemK => get_parameter("mem_k");
    Parameter? MemV => get_parameter("mem_v");

    T Module<T>(string name, T m) where T : nn.Module
    {
        register_module(name, m);
        return m;
    }

    void Param(string name, Tensor init) => register_parameter(name, new Parameter(init));

    public override BlockOutput Forward(Tensor x, BlockInputs inputs)
    {
        using var scope = NewDisposeScope();
        bool isCross = inputs.Context is not null;
        var positions = isCross ? null : inputs.Positions;

        // 1. Project queries, keys and values: [b, h, n, d].
        var (q, k, v) = isCross ? ProjectContext(x, inputs) : ProjectSelf(x, inputs);

        // 2. Positions that rotate queries and keys (rotary), then 3. keys and values join the cache.
        if (!isCross)
        {
            (q, k, v) = Rotate(q, k, v, positions);
            if (inputs.Cache is { } cache) (k, v) = cache.Append(k, v);
        }
        (k, v) = WithPersistentMemory(k, v, x.shape[0]);
        long i = q.shape[2], j = k.shape[2];

        // 4. What each query may not see, and the additive position bias (T5, ALiBi): shared by both paths.
        var mask = AttentionMask.Build(inputs, isCross, _causal, _o.MaxAttendPast, _o.NumMemKv, x.shape[0], i, j, x.device);
        var bias = PositionBias(positions, i, j, x.device, x.dtype);

        // 5. Scores and weighted values: libtorch's fused kernel, or step by step where an option needs the scores.
        if (UsesFusedKernel(inputs, j))
            return new BlockOutput(Combine(FusedAttention(q, k, v, mask, bias), x).MoveToOuterDisposeScope());
        var (outHeads, preSoftmax, postSoftmax) = ExplicitAttention(q, k, v, mask, bias, inputs.PrevAttn);

        // 6. Combine the heads into the output.
        var output = Combine(outHeads, x).MoveToOuterDisposeScope();
        return inputs.NeedAttention
            ? new BlockOutput(output, preSoftmax.MoveToOuterDisposeScope(), postSoftmax.MoveToOuterDisposeScope())
            : new BlockOutput(output);
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
        return (SplitQ(q), SplitK(k), SplitHeads(v));
    }

    /// <summary>
    /// q, k and v of one input by a single matmul against [W_q; W_k; W_v] (one kernel instead of three, and a larger,
    /// more efficient one), split along the features. The parameters stay x-transformers' to_q / to_k / to_v; the
    /// stacked weight is built per call while training (autograd splits its gradient back), and once per decoding run
    /// (kept in the layer's cache) when generating, since the weights do not change then.
    /// </summary>
    (Tensor Q, Tensor K, Tensor V) ProjectFused(Tensor x, LayerCache? cache)
    {
        long qk = _toQ.weight!.shape[0], vd = _toV.weight!.shape[0];
        Tensor Stack()
        {
            var w = cat(new[] { _toQ.weight!, _toK.weight!, _toV.weight! }, 0);
            return _toQ.bias is null ? w : cat(new[] { w, cat(new[] { _toQ.bias, _toK.bias!, _toV.bias! }, 0).unsqueeze(1) }, 1);
        }
        var stacked = cache is not null && !is_grad_enabled() ? cache.Derived("fused_qkv", Stack) : Stack();
        var qkv = _toQ.bias is null
            ? nn.functional.linear(x, stacked)
            : nn.functional.linear(x, stacked.narrow(1, 0, x.shape[^1]), stacked.select(1, x.shape[^1]));
        return (qkv.narrow(-1, 0, qk), qkv.narrow(-1, qk, qk), qkv.narrow(-1, 2 * qk, vd));
    }

    /// <summary>Cross-attention: queries from x; keys and values from the context, projected once per cache.</summary>
    (Tensor Q, Tensor K, Tensor V) ProjectContext(Tensor x, BlockInputs inputs)
    {
        var q = SplitQ(_toQ.forward(x));
        if (inputs.Cache?.Context is (Tensor cachedK, Tensor cachedV)) return (q, cachedK, cachedV);
        var context = inputs.Context!;
        var (k, v) = (SplitK(_toK.forward(context)), SplitHeads(_toV.forward(context)));
        inputs.Cache?.SetContext(k, v);
        return (q, k, v);
    }

    /// <summary>Rotary embeddings (RoFormer): the first l features of q, k and v (as 0.20 does) rotated by their absolute positions.</summary>
    static (Tensor Q, Tensor K, Tensor V) Rotate(Tensor q, Tensor k, Tensor v, PositionInputs? positions)
    {
        if (positions?.RotaryFreqs is not { } freqs) return (q, k, v);
        long l = freqs.shape[^1];
        return (RotaryPrefix(q, freqs, l), RotaryPrefix(k, freqs, l), RotaryPrefix(v, freqs, l));
    }

    /// <summary>Persistent memory (all-attention): learned key/values before all others, for every query.</summary>
    (Tensor K, Tensor V) WithPersistentMemory(Tensor k, Tensor v, long b)
    {
        if (MemK is not null)
        {
            k = cat(new[] { MemK.unsqueeze(0).expand(b, -1, -1, -1), k.expand(b, _o.CollabHeads ? _heads : k.shape[1], -1, -1) }, 2);
            v = cat(new[] { MemV!.unsqueeze(0).expand(b, -1, -1, -1), v }, 2);
        }
        // Collaborative heads share one key per position; each head mixes its own query.
        return (_o.CollabHeads ? k.expand(-1, _heads, -1, -1) : k, v);
    }

    /// <summary>
    /// Whether a call with <paramref name="inputs"/> over <paramref name="keys"/> keys runs libtorch's fused kernel:
    /// unless an option needs the score matrix itself (talking heads, collaborative heads, entmax, top-k below the key
    /// count, residual attention, returned attention maps). Every mask and position bias goes through either path.
    /// </summary>
    public bool UsesFusedKernel(BlockInputs inputs, long keys) =>
        !inputs.NeedAttention && inputs.PrevAttn is null && !_o.TalkingHeads && !_o.CollabHeads && !_o.UseEntmax15
        && (_o.SparseTopk is null || _o.SparseTopk >= keys);

    /// <summary>libtorch's fused attention: the mask and bias become one additive mask, or the causal flag alone.</summary>
    Tensor FusedAttention(Tensor q, Tensor k, Tensor v, AttentionMask mask, Tensor? bias)
    {
        bool isCausal = bias is null && mask.IsPlainCausal;
        var additive = bias;
        if (!isCausal && mask.Hidden(q.device) is { } hidden)
            additive = (bias ?? zeros(1, 1, mask.Queries, mask.Keys, dtype: q.dtype, device: q.device)).masked_fill(hidden, FusedMaskValue(q.dtype));
        return nn.functional.scaled_dot_product_attention(q, k, v, additive, training ? _o.Dropout : 0.0, isCausal);
    }

    /// <summary>The score matrix step by step, as x-transformers 0.20 computes it; also returns the pre- and post-softmax maps.</summary>
    (Tensor Out, Tensor PreSoftmax, Tensor PostSoftmax) ExplicitAttention(Tensor q, Tensor k, Tensor v, AttentionMask mask, Tensor? bias, Tensor? prevAttn)
    {
        var dots = einsum("bhid,bhjd->bhij", q, k) * _scale;
        if (prevAttn is not null) dots = dots + prevAttn;
        var preSoftmax = dots.clone();
        if (PreSoftmaxProj is not null) dots = einsum("bhij,hk->bkij", dots, PreSoftmaxProj).contiguous();
        if (bias is not null) dots = dots + bias;
        var maskValue = MaxNeg(dots.dtype);
        if (mask.Hidden(q.device) is { } hidden) dots = dots.masked_fill(hidden, maskValue);
        if (_o.SparseTopk is { } topk && topk < dots.shape[^1])
        {
            var (top, _) = dots.topk(topk, -1);
            var threshold = top.narrow(-1, topk - 1, 1).expand_as(dots);
            dots = dots.masked_fill(dots.lt(threshold), maskValue);
        }

        var attn = _o.UseEntmax15 ? Entmax15.Apply(dots, -1) : dots.softmax(-1);
        var postSoftmax = attn.clone();
        attn = _dropout.forward(attn);
        if (PostSoftmaxProj is not null) attn = einsum("bhij,hk->bkij", attn, PostSoftmaxProj).contiguous();
        return (einsum("bhij,bhjd->bhid", attn, v), preSoftmax, postSoftmax);
    }

    /// <summary>Causal depth-wise convolution over the sequence, continuing from the cached last positions when decoding.</summary>
    static Tensor DConv(CausalDepthwiseConv1d conv, Tensor x, LayerCache? cache, CacheHistory slot)
    {
        var (output, history) = conv.Forward(x, cache?.History(slot));
        cache?.KeepHistory(slot, history);
        return output;
    }

    /// <summary>Head scaling, merge heads, value gates, output projection.</summary>
    Tensor Combine(Tensor outHeads, Tensor x)
    {
        if (HeadScale is not null) outHeads = outHeads * HeadScale;
        var (b, h, n, d) = (outHeads.shape[0], outHeads.shape[1], outHeads.shape[2], outHeads.shape[3]);
        var merged = outHeads.transpose(1, 2).reshape(b, n, h * d);
        if (_toVGate is not null) merged = merged * _toVGate.forward(x).sigmoid();
        return _toOut.forward(merged);
    }

    /// <summary>Queries per head; collaborative heads mix one shared query projection per head.</summary>
    Tensor SplitQ(Tensor q) =>
        _o.CollabHeads ? einsum("bid,hd->bhid", q, CollabMixing!) : SplitHeads(q);

    /// <summary>Keys per head; collaborative heads keep a single key projection for all heads.</summary>
    Tensor SplitK(Tensor k) => _o.CollabHeads ? k.unsqueeze(1) : SplitHeads(k);

    Tensor SplitHeads(Tensor t) =>
        t.reshape(t.shape[0], t.shape[1], _heads, -1).transpose(1, 2);

    /// <summary>Rotates the first l features of t by the last t.shape[2] positions of freqs.</summary>
    static Tensor RotaryPrefix(Tensor t, Tensor freqs, long l)
    {
        long n = t.shape[2];
        var f = freqs.narrow(2, freqs.shape[2] - n, n);
        var left = RotaryEmbedding.Apply(t.narrow(-1, 0, l), f);
        return t.shape[^1] == l ? left : cat(new[] { left, t.narrow(-1, l, t.shape[^1] - l) }, -1);
    }

    /// <summary>T5 or ALiBi bias for queries x keys, or null.</summary>
    Tensor? PositionBias(PositionInputs? pos, long i, long j, Device device, ScalarType dtype)
    {
        if (pos?.T5 is { } t5) return t5.Forward(i, j, pos.QueryStart, device).to_type(dtype);
        if (pos?.Alibi is { } alibi) return alibi.Forward(_heads, j, device, dtype);
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
