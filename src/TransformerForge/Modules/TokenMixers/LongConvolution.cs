using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// The pieces SGConv (Li et al. 2022, "What Makes Convolutional Models Great on Long Sequence Modeling?") builds its
/// sequence-long kernel from, shared by <see cref="GConv"/> and <see cref="GConv3"/>.
/// </summary>
public static class LongConvolution
{
    /// <summary>
    /// Number of kernel scales for sequences up to <paramref name="maxLength"/>: enough doublings of
    /// <paramref name="kernelDim"/> to cover it (Archai: 1 + ceil(log2(l_max / kernel_dim))).
    /// </summary>
    public static int ScaleCount(int maxLength, int kernelDim) =>
        1 + (int)Math.Ceiling(Math.Log2(maxLength / (double)kernelDim));

    /// <summary>
    /// SGConv's "cat" kernel: scale i is linearly upsampled by 2^max(0, i-1), so each new scale doubles the covered
    /// length, and damped by multiplier^(scales-1-i) so that farther positions weigh less; the scales are concatenated.
    /// Returns [channels, features, kernelDim · 2^(scales-1)].
    /// </summary>
    public static Tensor MultiScaleKernel(ParameterSequence scales, Tensor multiplier)
    {
        var parts = new List<Tensor>();
        for (int i = 0; i < scales.Count; i++)
        {
            var factor = 1 << Math.Max(0, i - 1);
            var kernel = factor == 1
                ? scales[i]
                : nn.functional.interpolate(scales[i], scale_factor: [factor], mode: InterpolationMode.Linear, align_corners: false);
            parts.Add(kernel * multiplier.pow(scales.Count - i - 1));
        }
        return cat(parts, -1);
    }

    /// <summary>Cuts or zero-pads the kernel's last dimension to <paramref name="length"/>.</summary>
    public static Tensor FitLength(Tensor kernel, long length)
    {
        var size = kernel.shape[^1];
        return size >= length ? kernel.narrow(-1, 0, length) : nn.functional.pad(kernel, [0, length - size]);
    }

    /// <summary>Whether a <c>kernel_norm_initialized</c> flag buffer is set.</summary>
    public static bool IsSet(Tensor flag) => flag.to_type(ScalarType.Float64).item<double>() != 0;

    /// <summary>
    /// Archai fixes each kernel's scale once, at the first forward: the L2 norm over positions of the full
    /// (uncut) kernel, kept in <paramref name="norm"/>; <paramref name="initialized"/> records that it happened.
    /// </summary>
    public static void InitializeNorm(Tensor kernel, Tensor norm, Tensor initialized)
    {
        using var _ = no_grad();
        norm.copy_(kernel.norm(-1, keepdim: true));
        initialized.fill_(1);
    }

    /// <summary>
    /// Causal convolution of <paramref name="u"/> [..., L] with <paramref name="kernel"/> [..., L] (broadcast), through
    /// FFTs of size 2L so the circular wrap-around never reaches the kept first L outputs.
    /// </summary>
    public static Tensor CausalFftConv(Tensor u, Tensor kernel)
    {
        var length = u.shape[^1];
        var uF = fft.rfft(u, 2 * length);
        var kF = fft.rfft(kernel, 2 * length);
        return fft.irfft(uF * kF, 2 * length).narrow(-1, 0, length);
    }
}
