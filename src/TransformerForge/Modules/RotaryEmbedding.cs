using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Rotary position embedding (RoFormer, Su et al. 2021) over the first <c>dim</c> features of each head. x-transformers
/// 0.20 pairs feature i with i + dim/2 (halves) and rotates queries, keys and values; 1.40 pairs neighbours (2i, 2i+1,
/// <paramref name="interleaved"/>) and rotates queries and keys only. With xPos (Sun et al. 2022) queries are also
/// scaled by <c>scale^((t − c) / scale_base)</c> and keys by its inverse, so scores decay with distance (c: a centre
/// that cancels in every query-key product).
/// </summary>
public sealed class RotaryEmbedding : ForgeModule
{
    readonly bool _interleaved;
    readonly int _scaleBase;

    public RotaryEmbedding(int dim, bool interleaved = false, bool xpos = false, int scaleBase = 512) : base(nameof(RotaryEmbedding))
    {
        _interleaved = interleaved;
        _scaleBase = scaleBase;
        register_buffer("inv_freq", 1.0 / pow(10000.0, arange(0, dim, 2, dtype: ScalarType.Float32) / dim));
        if (xpos) register_buffer("scale", (arange(0, dim, 2, dtype: ScalarType.Float32) + 0.4 * dim) / (1.4 * dim));
    }

    public bool Interleaved => _interleaved;
    public bool UsesXpos => get_buffer("scale") is not null;

    /// <summary>Angles for positions 0..length-1, shaped [1, 1, length, dim].</summary>
    public Tensor Forward(long length)
    {
        var invFreq = get_buffer("inv_freq")!;
        using var t = arange(length, device: invFreq.device).to_type(invFreq.dtype);
        using var freqs = einsum("i,j->ij", t, invFreq);
        return Spread(freqs).unsqueeze(0).unsqueeze(0);
    }

    /// <summary>
    /// xPos query scales for positions 0..length-1 around <paramref name="center"/>, [1, 1, length, dim] (keys use the
    /// inverse), or null without xPos. x-transformers centres at (max position + 1) // 2 of the call.
    /// </summary>
    public Tensor? XposScale(long length, long center)
    {
        if (get_buffer("scale") is not { } scale) return null;
        // (t - c) / scale_base in float32, as x-transformers divides an integer tensor.
        using var power = (arange(length, dtype: ScalarType.Int64, device: scale.device) - center).to_type(ScalarType.Float32) / _scaleBase;
        using var scales = pow(scale.unsqueeze(0), power.unsqueeze(1).to_type(scale.dtype));
        return Spread(scales).unsqueeze(0).unsqueeze(0);
    }

    /// <summary>One value per feature pair → one per feature: [a, b] → [a, a, b, b] (interleaved) or [a, b, a, b] (halves).</summary>
    Tensor Spread(Tensor perPair) =>
        _interleaved ? stack(new[] { perPair, perPair }, -1).flatten(-2) : cat(new[] { perPair, perPair }, -1);

    /// <summary>Rotates <paramref name="t"/> [b, h, n, l] by angles <paramref name="freqs"/> [1, 1, n, l] (already aligned to t's positions).</summary>
    public static Tensor Apply(Tensor t, Tensor freqs, bool interleaved = false, Tensor? xposScale = null)
    {
        // Low-precision activations (mixed precision) take cos and sin computed in the angles' float32: bfloat16
        // cannot hold angles in the thousands. Otherwise the angles take the activations' precision first.
        if (!LowPrecision.IsLow(t.dtype)) freqs = freqs.to_type(t.dtype);
        var (cos, sin) = (freqs.cos().to_type(t.dtype), freqs.sin().to_type(t.dtype));
        var rotated = interleaved ? RotatePairs(t) : RotateHalf(t);
        if (xposScale is null) return t * cos + rotated * sin;
        var s = xposScale.to_type(t.dtype);
        return t * cos * s + rotated * sin * s;
    }

    static Tensor RotateHalf(Tensor x)
    {
        var halves = x.chunk(2, -1);
        return cat(new[] { -halves[1], halves[0] }, -1);
    }

    /// <summary>(x1, x2) → (−x2, x1) for each neighbouring pair.</summary>
    static Tensor RotatePairs(Tensor x)
    {
        var pairs = x.unflatten(x.dim() - 1, new long[] { x.shape[^1] / 2, 2 });
        var (x1, x2) = (pairs.select(-1, 0), pairs.select(-1, 1));
        return stack(new[] { -x2, x1 }, -1).flatten(-2);
    }
}
