using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>Sinusoidal positions (Vaswani et al. 2017), used by position-infused attention (Shortformer, Press et al. 2020).</summary>
public sealed class FixedPositionalEmbedding : ForgeModule
{
    readonly Tensor _invFreq;

    public FixedPositionalEmbedding(int dim) : base(nameof(FixedPositionalEmbedding))
    {
        _invFreq = 1.0 / pow(10000.0, arange(0, dim, 2, dtype: ScalarType.Float32) / dim);
        register_buffer("inv_freq", _invFreq);
    }

    /// <summary>[1, n, dim]: sin and cos of positions offset..offset+n-1, concatenated.</summary>
    public Tensor Forward(long n, long offset, ScalarType dtype)
    {
        var invFreq = get_buffer("inv_freq")!;
        using var t = arange(n, device: invFreq.device).to_type(invFreq.dtype) + offset;
        using var sinusoid = einsum("i,j->ij", t, invFreq);
        return cat(new[] { sinusoid.sin(), sinusoid.cos() }, -1).unsqueeze(0).to_type(dtype);
    }
}
