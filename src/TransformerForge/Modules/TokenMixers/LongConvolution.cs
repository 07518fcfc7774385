using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// The pieces SGConv (Li et al. 2022, "What Makes Convolutional Models Great on Long Sequence Modeling?") builds its
/// sequence-long kernel from, shared by <see cref="GConv"/> and <see cref="GConv3"/>, and the causal convolution they
/// run it with: directly for short kernels, through the FFT for long ones.
/// </summary>
public static class LongConvolution
{
    /// <summary>
    /// Number of kernel scales for sequences up to <paramref name="maxLength"/>: enough doublings of
    /// <paramref name="kernelDim"/> to cover it (Archai: 1 + ceil(log2(l_max / kernel_dim))); at least one scale
    /// needs kernelDim &lt; 2 · maxLength.
    /// </summary>
    public static int ScaleCount(int maxLength, int kernelDim)
    {
        var scales = 1 + (int)Math.Ceiling(Math.Log2(maxLength / (double)kernelDim));
        if (scales < 1)
            throw new ArgumentOutOfRangeException(nameof(kernelDim), kernelDim, $"an SGConv kernel size must be less than twice the longest sequence ({maxLength})");
        return scales;
    }

    /// <summary>Taps of the kernel <see cref="MultiScaleKernel"/> builds: kernelDim · 2^(scales-1).</summary>
    public static int KernelLength(int maxLength, int kernelDim) => kernelDim << (ScaleCount(maxLength, kernelDim) - 1);

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
    /// The last <paramref name="outputs"/> outputs (default: all) of the causal convolution of <paramref name="u"/>
    /// [..., channels, L] with <paramref name="kernel"/> [channels, taps]: y[t] = Σ_j kernel[j] · u[t - j], zeros before
    /// the start. Taps beyond L never reach an output and are dropped; so are inputs too old for the outputs asked for.
    /// Runs directly or through the FFT, whichever <see cref="UseFft"/> says is faster.
    /// </summary>
    public static Tensor CausalConv(Tensor u, Tensor kernel, long? outputs = null)
    {
        long length = u.shape[^1], n = outputs ?? length;
        if (n <= 0 || n > length) throw new ArgumentOutOfRangeException(nameof(outputs), n, $"must be in 1 .. {length}");
        long taps = Math.Min(kernel.shape[^1], length);
        kernel = kernel.narrow(-1, 0, taps);
        long window = Math.Min(length, n + taps - 1);
        u = u.narrow(-1, length - window, window);
        return UseFft(n, taps) ? Fft(u, kernel, n) : Direct(u, kernel, n);
    }

    /// <summary>
    /// Whether the FFT beats the direct sum for <paramref name="outputs"/> outputs of a <paramref name="taps"/>-tap
    /// kernel. The direct sum costs outputs · taps multiply-adds, the FFT a few transforms of outputs + 2 · taps points;
    /// the crossover was measured on CPU (tforge bench conv; docs/transformer-plus-plus.md): direct wins up to about
    /// <see cref="DirectTapsPerLog"/> taps per log2 of the transform size.
    /// </summary>
    public static bool UseFft(long outputs, long taps)
    {
        double size = outputs + 2.0 * taps;
        return taps > DirectTapsPerLog * Math.Log2(size) && outputs > 1;
    }

    /// <summary>Kernel taps per log2(transform size) below which the direct sum is faster (measured, see <see cref="UseFft"/>).</summary>
    public const double DirectTapsPerLog = 32;

    /// <summary>The direct sum: a depth-wise conv1d of the (zero-padded) window with the flipped kernel.</summary>
    public static Tensor Direct(Tensor u, Tensor kernel, long outputs)
    {
        long taps = kernel.shape[^1], channels = kernel.shape[^2], window = u.shape[^1];
        var lead = u.shape[..^2];
        var flat = u.reshape(-1, channels, window);
        long missing = outputs + taps - 1 - window;
        if (missing > 0) flat = nn.functional.pad(flat, [missing, 0]);
        var y = nn.functional.conv1d(flat, kernel.flip(-1).unsqueeze(1), groups: channels);   // [N, C, outputs]
        return y.reshape([.. lead, channels, outputs]);
    }

    /// <summary>Through the FFT, padded so that the circular wrap-around never reaches the kept outputs.</summary>
    public static Tensor Fft(Tensor u, Tensor kernel, long outputs)
    {
        long window = u.shape[^1], taps = kernel.shape[^1];
        long size = FastSize(window + taps - 1);
        var y = fft.irfft(fft.rfft(u, size) * fft.rfft(kernel, size), size);
        return y.narrow(-1, window - outputs, outputs);
    }

    /// <summary>The smallest 2^a · 3^b · 5^c ≥ n (sizes the FFT handles fastest).</summary>
    static long FastSize(long n)
    {
        long best = long.MaxValue;
        for (long p2 = 1; p2 < 2 * n; p2 *= 2)
            for (long p3 = p2; p3 < 2 * n; p3 *= 3)
                for (long p5 = p3; p5 < 2 * n; p5 *= 5)
                    if (p5 >= n && p5 < best) best = p5;
        return best;
    }
}
