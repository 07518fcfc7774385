using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>Options of one attention block (x-transformers' <c>Attention</c> keywords).</summary>
public sealed record AttentionOptions
{
    public int DimHead { get; init; } = 64;
    public int Heads { get; init; } = 8;
    public bool Causal { get; init; }
    public bool TalkingHeads { get; init; }
    public bool HeadScale { get; init; }
    public bool CollabHeads { get; init; }
    public double CollabCompression { get; init; } = 0.3;
    public int? SparseTopk { get; init; }
    public bool UseEntmax15 { get; init; }
    public int NumMemKv { get; init; }
    public double Dropout { get; init; }
    public bool OnAttn { get; init; }
    public bool GateValues { get; init; }
    public bool ZeroInitOutput { get; init; }
    public int? MaxAttendPast { get; init; }
    /// <summary>Primer's depth-wise causal convolution width after q/k/v projections (null = none).</summary>
    public int? DConvKernelSize { get; init; }
    public bool DConvSharedHeads { get; init; }
}

/// <summary>
/// Multi-head attention (Vaswani et al. 2017) with x-transformers' options, each from its paper: persistent memory
/// key/values (all-attention, Sukhbaatar et al. 2019), talking heads (Shazeer et al. 2020), collaborative heads
/// (Cordonnier et al. 2020), top-k sparse attention (Zhao et al. 2019), entmax 1.5 (Peters et al. 2019),
/// attention on attention (Huang et al. 2019), value gating (AlphaFold2), head scaling (NormFormer), residual attention
/// (RealFormer, He et al. 2020), multi-DConv-head attention (Primer, So et al. 2021). The plain case runs through libtorch's fused scaled_dot_product_attention.
/// </summary>
public sealed class Attention : Block
{
    readonly AttentionOptions _o;
    readonly double _scale;
    readonly Linear _toQ, _toK, _toV;
    readonly Linear? _toVGate;
    readonly nn.Module<Tensor, Tensor> _toOut;
    readonly Dropout _dropout;
    readonly CausalDepthwiseConv1d? _qConv, _kConv, _vConv;

    public Attention(int dim, AttentionOptions o) : base(nameof(Attention))
    {
        _o = o;
        _scale = Math.Pow(o.DimHead, -0.5);
        int qkDim = o.DimHead * o.Heads, vDim = o.DimHead * o.Heads;

        if (o.CollabHeads)
        {
            qkDim = (int)(o.CollabCompression * qkDim);
            Param("collab_mixing", randn(o.Heads, qkDim));
        }

        _toQ = Module("to_q", nn.Linear(dim, qkDim, hasBias: false));
        _toK = Module("to_k", nn.Linear(dim, qkDim, hasBias: false));
        _toV = Module("to_v", nn.Linear(dim, vDim, hasBias: false));
        _dropout = Module("dropout", nn.Dropout(o.Dropout));
        if (o.DConvKernelSize is { } width)
        {
            int channels = o.DConvSharedHeads ? o.DimHead : qkDim;
            _qConv = Module("to_q_dconv", new CausalDepthwiseConv1d(channels, width));
            _kConv = Module("to_k_dconv", new CausalDepthwiseConv1d(channels, width));
            _vConv = Module("to_v_dconv", new CausalDepthwiseConv1d(channels, width));
        }

        if (o.GateValues)
        {
            // Gates start fully open (weight 0, bias 1), so the block starts as plain attention.
            _toVGate = Module("to_v_gate", nn.Linear(dim, vDim));
            Init.Fill(_toVGate.weight!, 0);
            Init.Fill(_toVGate.bias!, 1);
        }
        if (o.TalkingHeads)
        {
            Param("pre_softmax_proj", randn(o.Heads, o.Heads));
            Param("post_softmax_proj", randn(o.Heads, o.Heads));
        }
        if (o.HeadScale) Param("head_scale_params", ones(1, o.Heads, 1, 1));
        if (o.NumMemKv > 0)
        {
            Param("mem_k", randn(o.Heads, o.NumMemKv, o.DimHead));
            Param("mem_v", randn(o.Heads, o.NumMemKv, o.DimHead));
        }

        if (o.OnAttn)
        {
            var proj = nn.Linear(vDim, dim * 2);
            _toOut = Module("to_out", nn.Sequential(proj, nn.GLU(-1)));
            if (o.ZeroInitOutput) Init.Zero(proj);
        }
        else
        {
            var proj = nn.Linear(vDim, dim);
            _toOut = Module("to_out", proj);
            if (o.ZeroInitOutput) Init.Zero(proj);
        }
    }

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
        long b = x.shape[0], n = x.shape[1];
        int h = _o.Heads;
        var context = inputs.Context;
        bool hasContext = context is not null;
        var cache = inputs.Cache;
        var pos = hasContext ? null : inputs.Positions;

        // 1. Project queries, keys and values. Keys/values come from the context (cross-attention), or from
        //    this layer's memory followed by x (Transformer-XL).
        Tensor q, k, v;
        if (hasContext && cache?.ContextKeys is not null)
        {
            q = SplitQ(_toQ.forward(x), h);
            k = cache.ContextKeys; v = cache.ContextValues!;
        }
        else
        {
            var kvInput = context ?? x;
            if (inputs.Mem is { } mem) kvInput = cat(new[] { mem, kvInput }, 1);
            var qInput = x;
            var kInput = kvInput;
            long cached = hasContext ? 0 : cache?.Keys?.shape[2] ?? 0;
            if (pos?.Pia is { } pia)
            {
                // Position-infused attention (Shortformer): positions go into queries and keys only, not values.
                long total = cached + kInput.shape[1];
                qInput = qInput + pia.Forward(n, total - n, x.dtype);
                kInput = kInput + pia.Forward(kInput.shape[1], cached, x.dtype);
            }
            q = _toQ.forward(qInput);
            k = _toK.forward(kInput);
            v = _toV.forward(kvInput);
            if (_qConv is not null && !hasContext)
            {
                // Primer: each projected position also mixes in the (kernel - 1) positions before it.
                q = DConv(_qConv, q, cache, 0);
                k = DConv(_kConv!, k, cache, 1);
                v = DConv(_vConv!, v, cache, 2);
            }
            q = SplitQ(q, h);
            k = _o.CollabHeads ? k.unsqueeze(1) : SplitHeads(k, h);
            v = SplitHeads(v, h);

            if (pos?.RotaryFreqs is { } freqs)
            {
                // Rotate the first l features of q, k and v by their absolute positions.
                long l = freqs.shape[^1];
                q = RotaryPrefix(q, freqs, l);
                k = RotaryPrefix(k, freqs, l);
                v = RotaryPrefix(v, freqs, l);
            }

            if (cache is not null)
            {
                if (hasContext)
                {
                    LayerCache.Store(ref cache.ContextKeys, k);
                    LayerCache.Store(ref cache.ContextValues, v);
                }
                else
                {
                    if (cache.Keys is { } ck) { k = cat(new[] { ck, k }, 2); v = cat(new[] { cache.Values!, v }, 2); }
                    LayerCache.Store(ref cache.Keys, k);
                    LayerCache.Store(ref cache.Values, v);
                }
            }
        }

        // 2. Padding masks: queries x keys, true = may attend.
        Tensor? inputMask = null;
        if (inputs.Mask is not null || inputs.ContextMask is not null || inputs.KeyMask is not null)
        {
            var qMask = inputs.Mask ?? ones(b, n, dtype: ScalarType.Bool, device: x.device);
            var kMask = hasContext ? inputs.ContextMask : inputs.KeyMask ?? inputs.Mask;
            kMask ??= ones(b, k.shape[2], dtype: ScalarType.Bool, device: x.device);
            inputMask = qMask.reshape(b, 1, n, 1).logical_and(kMask.reshape(b, 1, 1, kMask.shape[1]));
        }

        // 3. Persistent memory: learned key/values every query may attend to.
        if (MemK is not null)
        {
            k = cat(new[] { MemK.unsqueeze(0).expand(b, -1, -1, -1), k.expand(b, _o.CollabHeads ? h : k.shape[1], -1, -1) }, 2);
            v = cat(new[] { MemV!.unsqueeze(0).expand(b, -1, -1, -1), v }, 2);
            if (inputMask is not null) inputMask = nn.functional.pad(inputMask, new long[] { _o.NumMemKv, 0 }, value: 1).to_type(ScalarType.Bool);
        }
        if (_o.CollabHeads) k = k.expand(-1, h, -1, -1);

        long i = q.shape[2], j = k.shape[2];
        var maskValue = MaxNeg(x.dtype);

        // 4. Fast path: libtorch's fused attention when no option needs the score matrix itself.
        if (CanUseFused(inputs, j))
        {
            var bias = PositionBias(pos, h, i, j, x.device, x.dtype);
            var allowed = AllowedMask(inputMask, inputs.AttnMask, i, j, x.device);
            Tensor? attnMaskArg = null;
            bool isCausal = false;
            if (bias is null && allowed is null && _o.Causal && i == j) isCausal = true;
            else if (bias is not null || allowed is not null || _o.Causal)
            {
                var causal = _o.Causal ? CausalMask(i, j, x.device) : null;
                var blocked = Or(allowed?.logical_not(), causal);
                var additive = bias ?? zeros(1, 1, i, j, dtype: x.dtype, device: x.device);
                attnMaskArg = blocked is null ? additive : additive.masked_fill(blocked, FusedMaskValue(x.dtype));
            }
            var fused = nn.functional.scaled_dot_product_attention(q, k, v, attnMaskArg, training ? _o.Dropout : 0.0, isCausal);
            return new BlockOutput(Finish(fused, x).MoveToOuterDisposeScope());
        }

        // 5. Explicit path, step by step as x-transformers 0.20 computes it.
        var dots = einsum("bhid,bhjd->bhij", q, k) * _scale;
        if (inputs.PrevAttn is { } prev) dots = dots + prev;
        var preSoftmaxAttn = dots.clone();
        if (PreSoftmaxProj is not null) dots = einsum("bhij,hk->bkij", dots, PreSoftmaxProj).contiguous();
        if (PositionBias(pos, h, i, j, x.device, x.dtype) is { } posBias) dots = dots + posBias;
        if (inputMask is not null) dots = dots.masked_fill(inputMask.logical_not(), maskValue);
        if (inputs.AttnMask is { } am) dots = dots.masked_fill(ExpandAttnMask(am).logical_not(), maskValue);
        if (_o.MaxAttendPast is { } past)
        {
            var dist = arange(j - i, j, device: x.device).reshape(1, 1, i, 1) - arange(j, device: x.device).reshape(1, 1, 1, j);
            dots = dots.masked_fill(dist.gt(past), maskValue);
        }
        if (_o.Causal) dots = dots.masked_fill(CausalMask(i, j, x.device), maskValue);
        if (_o.SparseTopk is { } topk && topk < j)
        {
            var (top, _) = dots.topk(topk, -1);
            var threshold = top.narrow(-1, topk - 1, 1).expand_as(dots);
            dots = dots.masked_fill(dots.lt(threshold), maskValue);
        }

        var attn = _o.UseEntmax15 ? Entmax15.Apply(dots, -1) : dots.softmax(-1);
        var postSoftmaxAttn = attn.clone();
        attn = _dropout.forward(attn);
        if (PostSoftmaxProj is not null) attn = einsum("bhij,hk->bkij", attn, PostSoftmaxProj).contiguous();

        var outHeads = einsum("bhij,bhjd->bhid", attn, v);
        var result = Finish(outHeads, x).MoveToOuterDisposeScope();
        return inputs.NeedAttention
            ? new BlockOutput(result, preSoftmaxAttn.MoveToOuterDisposeScope(), postSoftmaxAttn.MoveToOuterDisposeScope())
            : new BlockOutput(result);
    }

    /// <summary>Causal depth-wise convolution over the sequence, continuing from the cached last positions when decoding.</summary>
    static Tensor DConv(CausalDepthwiseConv1d conv, Tensor x, LayerCache? cache, int slot)
    {
        var (output, history) = conv.Forward(x, cache?.ConvHistory[slot]);
        if (cache is not null) LayerCache.Store(ref cache.ConvHistory[slot], history.detach());
        return output;
    }

    bool CanUseFused(BlockInputs inputs, long j) =>
        !inputs.NeedAttention && inputs.PrevAttn is null && !_o.TalkingHeads && !_o.CollabHeads && !_o.UseEntmax15
        && (_o.SparseTopk is null || _o.SparseTopk >= j) && _o.MaxAttendPast is null;

    /// <summary>Head scaling, merge heads, value gates, output projection.</summary>
    Tensor Finish(Tensor outHeads, Tensor x)
    {
        if (HeadScale is not null) outHeads = outHeads * HeadScale;
        var (b, h, n, d) = (outHeads.shape[0], outHeads.shape[1], outHeads.shape[2], outHeads.shape[3]);
        var merged = outHeads.transpose(1, 2).reshape(b, n, h * d);
        if (_toVGate is not null) merged = merged * _toVGate.forward(x).sigmoid();
        return _toOut.forward(merged);
    }

    Tensor SplitQ(Tensor q, int h) =>
        _o.CollabHeads ? einsum("bid,hd->bhid", q, CollabMixing!) : SplitHeads(q, h);

    static Tensor SplitHeads(Tensor t, int h) =>
        t.reshape(t.shape[0], t.shape[1], h, -1).transpose(1, 2);

    /// <summary>Rotates the first l features of t by the last t.shape[2] positions of freqs.</summary>
    static Tensor RotaryPrefix(Tensor t, Tensor freqs, long l)
    {
        long n = t.shape[2];
        var f = freqs.narrow(2, freqs.shape[2] - n, n);
        var left = RotaryEmbedding.Apply(t.narrow(-1, 0, l), f);
        return t.shape[^1] == l ? left : cat(new[] { left, t.narrow(-1, l, t.shape[^1] - l) }, -1);
    }

    /// <summary>T5 or ALiBi bias for queries x keys, or null.</summary>
    static Tensor? PositionBias(PositionInputs? pos, int heads, long i, long j, Device device, ScalarType dtype)
    {
        if (pos?.T5 is { } t5) return t5.Forward(i, j, pos.QueryStart, device).to_type(dtype);
        if (pos?.Alibi is { } alibi) return alibi.Forward(heads, j, device, dtype);
        return null;
    }

    /// <summary>Query i (the last i of j positions) may not see keys after it; earlier keys (memory, cache) stay visible.</summary>
    static Tensor CausalMask(long i, long j, Device device)
    {
        var r = arange(i, device: device);
        var mask = r.reshape(i, 1).lt(r.reshape(1, i));
        return nn.functional.pad(mask, new long[] { j - i, 0 }, value: 0).to_type(ScalarType.Bool).reshape(1, 1, i, j);
    }

    static Tensor? AllowedMask(Tensor? inputMask, Tensor? attnMask, long i, long j, Device device)
    {
        Tensor? allowed = inputMask;
        if (attnMask is not null)
        {
            var am = ExpandAttnMask(attnMask);
            allowed = allowed is null ? am : allowed.logical_and(am);
        }
        return allowed;
    }

    static Tensor ExpandAttnMask(Tensor m) => m.dim() switch
    {
        2 => m.reshape(1, 1, m.shape[0], m.shape[1]),
        3 => m.unsqueeze(0),
        4 => m,
        _ => throw new ArgumentException("attention mask must have 2, 3 or 4 dimensions"),
    };

    static Tensor? Or(Tensor? a, Tensor? b) => a is null ? b : b is null ? a : a.logical_or(b);

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
