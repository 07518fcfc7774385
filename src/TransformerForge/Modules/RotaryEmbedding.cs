using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Rotary position embedding (RoFormer, Su et al. 2021). x-transformers 0.20 rotates the first <c>l</c> features of
/// queries, keys and values, with frequencies over the rotary dimension.
/// </summary>
public sealed class RotaryEmbedding : ForgeModule
{
    public RotaryEmbedding(int dim) : base(nameof(RotaryEmbedding))
    {
        register_buffer("inv_freq", 1.0 / pow(10000.0, arange(0, dim, 2, dtype: ScalarType.Float32) / dim));
    }

    /// <summary>Angles for positions 0..length-1, shaped [1, 1, length, dim].</summary>
    public Tensor Forward(long length)
    {
        var invFreq = get_buffer("inv_freq")!;
        using var t = arange(length, device: invFreq.device).to_type(invFreq.dtype);
        using var freqs = einsum("i,j->ij", t, invFreq);
        return cat(new[] { freqs, freqs }, -1).unsqueeze(0).unsqueeze(0);
    }

    /// <summary>Rotates <paramref name="t"/> [b, h, n, l] by angles <paramref name="freqs"/> [1, 1, n, l] (already aligned to t's positions).</summary>
    public static Tensor Apply(Tensor t, Tensor freqs)
    {
        // Low-precision activations (mixed precision) take cos and sin computed in the angles' float32: bfloat16
        // cannot hold angles in the thousands. Otherwise the angles take the activations' precision first.
        if (!LowPrecision.IsLow(t.dtype)) freqs = freqs.to_type(t.dtype);
        return t * freqs.cos().to_type(t.dtype) + RotateHalf(t) * freqs.sin().to_type(t.dtype);
    }

    static Tensor RotateHalf(Tensor x)
    {
        var halves = x.chunk(2, -1);
        return cat(new[] { -halves[1], halves[0] }, -1);
    }
}
