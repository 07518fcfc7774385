using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Support;

/// <summary>What x-transformers 0.20 computes in one self-attention layer, written out independently of the modules.</summary>
internal sealed record AttentionSpec(int Heads, int DimHead, bool Causal, int RotaryDim = 0, int? MaxAttendPast = null,
    int DConvKernel = 0, bool DConvSharedHeads = false);

/// <summary>
/// Reference computations for option tests where no fixture exists, from x-transformers 0.20's formulas (and Primer's
/// for the depth-wise convolutions): they read a model's parameters by their x-transformers names and recompute.
/// </summary>
internal static class Reference
{
    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, double eps = 1e-5)
    {
        var mean = x.mean(new long[] { -1 }, keepdim: true);
        var variance = (x - mean).square().mean(new long[] { -1 }, keepdim: true);
        return (x - mean) / (variance + eps).sqrt() * weight + bias;
    }

    /// <summary>
    /// One pre-norm self-attention layer: <c>x + to_out(softmax(q kᵀ / √d + masks) v)</c>, with the LayerNorm at
    /// <c>{prefix}0</c> and the attention at <c>{prefix}1</c>. Returns the output and the post-softmax attention [b, h, n, n].
    /// </summary>
    public static (Tensor Output, Tensor Attention) SelfAttentionLayer(nn.Module m, string prefix, Tensor x, AttentionSpec s)
    {
        Tensor P(string name) => Weights.Param(m, prefix + name);
        long b = x.shape[0], n = x.shape[1];
        var h = LayerNorm(x, P("0.weight"), P("0.bias"));
        // x-transformers' projections have no bias; attn_qkv_bias (labml's Primer) adds one.
        Tensor Project(string name)
        {
            var y = h.matmul(P($"1.{name}.weight").t());
            return Weights.Has(m, $"{prefix}1.{name}.bias") ? y + P($"1.{name}.bias") : y;
        }
        var (q, k, v) = (Project("to_q"), Project("to_k"), Project("to_v"));
        if (s.DConvKernel > 0)
        {
            // Primer: each projection is followed by a causal depth-wise convolution along the sequence.
            q = CausalDepthwise(q, P("1.to_q_dconv.weight"), P("1.to_q_dconv.bias"), s);
            k = CausalDepthwise(k, P("1.to_k_dconv.weight"), P("1.to_k_dconv.bias"), s);
            v = CausalDepthwise(v, P("1.to_v_dconv.weight"), P("1.to_v_dconv.bias"), s);
        }
        Tensor Heads(Tensor t) => t.reshape(b, n, s.Heads, s.DimHead).transpose(1, 2);
        (q, k, v) = (Heads(q), Heads(k), Heads(v));
        if (s.RotaryDim > 0) (q, k, v) = (Rotate(q, s.RotaryDim), Rotate(k, s.RotaryDim), Rotate(v, s.RotaryDim));

        var dots = q.matmul(k.transpose(-1, -2)) * Math.Pow(s.DimHead, -0.5);
        var blocked = Blocked(n, s.Causal, s.MaxAttendPast);
        var attention = dots.masked_fill(blocked, double.NegativeInfinity).softmax(-1);
        var merged = attention.matmul(v).transpose(1, 2).reshape(b, n, s.Heads * s.DimHead);
        return (x + merged.matmul(P("1.to_out.weight").t()) + P("1.to_out.bias"), attention);
    }

    /// <summary>Which key j query i may not see [n, n]: the future (causal) and keys more than <c>maxAttendPast</c> back.</summary>
    public static Tensor Blocked(long n, bool causal, int? maxAttendPast)
    {
        var i = arange(n).unsqueeze(1);
        var j = arange(n).unsqueeze(0);
        var blocked = zeros(n, n, dtype: ScalarType.Bool);
        if (causal) blocked = blocked.logical_or(j.gt(i));
        if (maxAttendPast is { } past) blocked = blocked.logical_or((i - j).gt(past));
        return blocked;
    }

    /// <summary>
    /// Causal depth-wise convolution: <c>out[t, f] = bias[c] + Σ_k w[c, k] · in[t − (K−1) + k, f]</c> with c the
    /// kernel of feature f (f itself, or f mod dim_head when the heads share kernels), zeros before the start.
    /// </summary>
    public static Tensor CausalDepthwise(Tensor t, Tensor weight, Tensor bias, AttentionSpec s)
    {
        long b = t.shape[0], n = t.shape[1], features = t.shape[2], kernel = weight.shape[2];
        Assert.Equal(s.DConvKernel, kernel);              // the configured width, not whatever the module chose
        var w = weight.select(1, 0);                       // [channels, K]
        if (s.DConvSharedHeads) (w, bias) = (w.repeat(s.Heads, 1), bias.repeat(s.Heads));
        Assert.Equal(features, w.shape[0]);
        var output = bias.expand(b, n, features).clone();
        for (long tap = 0; tap < kernel; tap++)
        {
            long back = kernel - 1 - tap;                  // this tap reads the input `back` positions earlier
            var shifted = back == 0 ? t : cat(new[] { zeros(b, back, features, dtype: t.dtype), t.narrow(1, 0, n - back) }, 1);
            output = output + shifted * w.select(1, tap);
        }
        return output;
    }

    /// <summary>
    /// Rotary embedding on the first <paramref name="l"/> features (RoFormer; x-transformers 0.20 rotates q, k and v):
    /// position p rotates the pair (f, f + l/2) by p·θ_f with θ_f = 10000^(−2f/l), θ computed in float32 as 0.20 does.
    /// </summary>
    public static Tensor Rotate(Tensor t, int l)
    {
        long n = t.shape[2];
        var theta = (1.0 / pow(10000.0, arange(0, l, 2, dtype: ScalarType.Float32) / l)).to_type(t.dtype);
        var angles = arange(n, dtype: t.dtype).unsqueeze(1) * theta.unsqueeze(0);   // [n, l/2]
        var (cos, sin) = (angles.cos(), angles.sin());
        var x1 = t.narrow(-1, 0, l / 2);
        var x2 = t.narrow(-1, l / 2, l / 2);
        var rotated = cat(new[] { x1 * cos - x2 * sin, x2 * cos + x1 * sin }, -1);
        return t.shape[^1] == l ? rotated : cat(new[] { rotated, t.narrow(-1, l, t.shape[^1] - l) }, -1);
    }

    /// <summary>x-transformers' token model input: token embedding plus the absolute position embedding scaled by dim^-0.5.</summary>
    public static Tensor TokenEmbedding(nn.Module wrapper, Tensor tokens, bool absolutePositions)
    {
        var table = Weights.Param(wrapper, "token_emb.weight");
        var h = table.index_select(0, tokens.flatten()).reshape(tokens.shape[0], tokens.shape[1], table.shape[1]);
        if (!absolutePositions) return h;
        var pos = Weights.Param(wrapper, "pos_emb.emb.weight").narrow(0, 0, tokens.shape[1]);
        return h + pos.unsqueeze(0) * Math.Pow(table.shape[1], -0.5);
    }

    /// <summary>
    /// T5's relative position bucket (Raffel et al. 2019) for query i, key j, as x-transformers 0.20 computes it:
    /// exact buckets for the nearest distances, logarithmic ones up to <paramref name="maxDistance"/>; bidirectional
    /// stacks give half the buckets to keys after the query.
    /// </summary>
    public static int T5Bucket(int i, int j, bool causal, int numBuckets, int maxDistance)
    {
        int n = i - j, bucket = 0;
        if (!causal)
        {
            numBuckets /= 2;
            if (n < 0) bucket += numBuckets;
            n = Math.Abs(n);
        }
        else n = Math.Max(n, 0);
        int maxExact = numBuckets / 2;
        if (n < maxExact) return bucket + n;
        // float32 log as torch computes it, then truncation (.long()).
        float ratio = (float)Math.Log((float)n / maxExact) / (float)Math.Log((double)maxDistance / maxExact);
        int large = maxExact + (int)(ratio * (numBuckets - maxExact));
        return bucket + Math.Min(large, numBuckets - 1);
    }
}
