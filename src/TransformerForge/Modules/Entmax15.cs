using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// 1.5-entmax (Peters, Niculae &amp; Martins 2019, "Sparse Sequence-to-Sequence Models"):
/// a sparse alternative to softmax, <c>y = [x/2 - tau]_+^2</c> with tau chosen so that y sums to 1.
/// Exact sort-based forward (Alg. 2 of the paper, as in the <c>entmax</c> package's <c>entmax15</c>,
/// which x-transformers uses for <c>attn_use_entmax15</c>) and closed-form backward.
/// </summary>
public static class Entmax15
{
    /// <summary>1.5-entmax of <paramref name="x"/> along <paramref name="dim"/> (any float dtype, any rank).</summary>
    public static Tensor Apply(Tensor x, long dim = -1)
    {
        if (!x.is_floating_point())
            throw new ArgumentException($"Entmax15 needs a floating-point tensor, got {x.dtype}.", nameof(x));
        if (x.dim() == 0)
            throw new ArgumentException("Entmax15 needs at least one dimension.", nameof(x));
        dim = dim < 0 ? dim + x.dim() : dim;
        if (dim < 0 || dim >= x.dim())
            throw new ArgumentOutOfRangeException(nameof(dim), $"dim {dim} is out of range for a {x.dim()}-D tensor.");

        // Skip the custom autograd node (a native allocation) when no gradient will flow.
        if (!x.requires_grad || !is_grad_enabled())
            return Forward(x, dim);
        return Entmax15Function.apply(x, dim);
    }

    /// <summary>Sort-based threshold (paper, Alg. 2 with alpha = 1.5): no autograd bookkeeping needed.</summary>
    internal static Tensor Forward(Tensor x, long dim)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();

        // Halving the input turns (alpha - 1) x = x / 2 into the plain threshold problem
        // sum_i [z_i - tau]_+^2 = 1; subtracting the max keeps it stable (tau is shift-equivariant).
        var z = x / 2;
        z = z - z.max(dim, keepdim: true).values;

        var d = z.shape[dim];
        var (zs, _) = z.sort(dim, descending: true);
        var rho = AlongDim(arange(1, d + 1, dtype: z.dtype, device: z.device), z.dim(), dim);

        // For support size k = rho, tau_k solves k tau^2 - 2 S1 tau + S2 - 1 = 0 (smaller root);
        // written via the mean and the spread ss = sum (z - mean)^2 for numerical stability.
        var mean = zs.cumsum(dim) / rho;
        var meanSq = (zs * zs).cumsum(dim) / rho;
        var ss = rho * (meanSq - mean * mean);
        var delta = (1 - ss) / rho;
        var tau = mean - delta.clamp_min(0).sqrt();

        // The true support is the largest k with tau_k <= z_(k); those k form a prefix.
        var supportSize = (tau <= zs).sum(dim, keepdim: true);
        var tauStar = tau.gather(dim, supportSize - 1);

        var y = (z - tauStar).clamp_min(0).pow(2);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Closed-form backward: with s = sqrt(y), J = diag(s) - s s^T / sum(s) (paper, Prop. 2 / Eq. 12).</summary>
    internal static Tensor Backward(Tensor gradOutput, Tensor y, long dim)
    {
        using var scope = NewDisposeScope();
        var gppr = y.sqrt();
        var dX = gradOutput * gppr;
        var q = dX.sum(dim, keepdim: true) / gppr.sum(dim, keepdim: true);
        dX = dX - q * gppr;
        return dX.MoveToOuterDisposeScope();
    }

    /// <summary>Reshapes a 1-D tensor so it broadcasts along <paramref name="dim"/> of a rank-<paramref name="rank"/> tensor.</summary>
    internal static Tensor AlongDim(Tensor v, long rank, long dim)
    {
        var shape = Enumerable.Repeat(1L, (int)rank).ToArray();
        shape[dim] = v.shape[0];
        return v.view(shape);
    }

    /// <summary>Custom autograd node so backward is the closed form rather than autograd through sort/gather.</summary>
    private sealed class Entmax15Function : autograd.SingleTensorFunction<Entmax15Function>
    {
        public override string Name => nameof(Entmax15Function);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            var dim = (long)vars[1];
            var y = Forward(x, dim);
            // Saving the output (not the input) is enough: the Jacobian depends only on y.
            ctx.save_for_backward(new() { y });
            ctx.save_data("dim", dim);
            return y;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
        {
            var y = ctx.get_saved_variables()[0];
            var dim = (long)ctx.get_data("dim");
            // One gradient per forward argument; dim is not a tensor.
            return new() { Backward(grad_output, y, dim), null! };
        }
    }
}
