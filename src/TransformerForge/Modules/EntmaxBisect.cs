using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// alpha-entmax for any alpha &gt; 1 by bisection on the threshold tau
/// (Peters, Niculae &amp; Martins 2019, "Sparse Sequence-to-Sequence Models", Alg. 1):
/// y = [(alpha - 1) x - tau]_+^(1 / (alpha - 1)), with tau such that y sums to 1.
/// Forward only; x-transformers' AutoregressiveWrapper samples with alpha = 1.3.
/// </summary>
public static class EntmaxBisect
{
    /// <summary>alpha-entmax of <paramref name="x"/> along <paramref name="dim"/>; not differentiable.</summary>
    public static Tensor Apply(Tensor x, double alpha, long dim = -1, int iterations = 50)
    {
        if (!x.is_floating_point())
            throw new ArgumentException($"EntmaxBisect needs a floating-point tensor, got {x.dtype}.", nameof(x));
        if (!(alpha > 1))
            throw new ArgumentOutOfRangeException(nameof(alpha), "alpha must be > 1 (alpha = 1 is softmax).");
        if (iterations < 1)
            throw new ArgumentOutOfRangeException(nameof(iterations), "need at least one bisection step.");
        if (x.dim() == 0)
            throw new ArgumentException("EntmaxBisect needs at least one dimension.", nameof(x));
        dim = dim < 0 ? dim + x.dim() : dim;
        if (dim < 0 || dim >= x.dim())
            throw new ArgumentOutOfRangeException(nameof(dim), $"dim {dim} is out of range for a {x.dim()}-D tensor.");

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();

        var power = 1.0 / (alpha - 1);
        var d = x.shape[dim];
        var z = x * (alpha - 1);
        var max = z.max(dim, keepdim: true).values;

        // tau* is bracketed: at tau = max - 1 the top entry alone already gives mass >= 1, and at
        // tau = max - (1/d)^(alpha-1) every entry gives at most 1/d, so the mass is <= 1.
        var tauLo = max - 1.0;
        var tauHi = max - Math.Pow(1.0 / d, alpha - 1);
        var width = tauHi - tauLo;

        Tensor p = null!;
        for (var i = 0; i < iterations; i++)
        {
            width = width / 2;
            var tauMid = tauLo + width;
            p = (z - tauMid).clamp_min(0).pow(power);
            // Mass is decreasing in tau: if it is still >= 1 at the midpoint, tau* lies above it.
            var massAtLeastOne = p.sum(dim, keepdim: true) >= 1;
            tauLo = where(massAtLeastOne, tauMid, tauLo);
        }

        // Renormalise away the residual bisection error so the output is a distribution.
        p = p / p.sum(dim, keepdim: true);
        return p.MoveToOuterDisposeScope();
    }
}
