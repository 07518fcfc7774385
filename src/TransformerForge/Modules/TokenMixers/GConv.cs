using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// SGConv's global convolution (Li et al. 2022) as Archai's <c>GConv</c> runs it in tfpp (one channel, "cat_randn"
/// kernel, GELU, no norm): every feature is convolved causally with its own sequence-long kernel, plus a skip
/// <c>D · u</c>, then mixed by <c>output_linear</c>. Input and output are [batch, seq, features]. Its decoding state
/// keeps the inputs the kernel still reaches and the normalised kernel.
/// <para>
/// Names: <c>D</c> [1, features], <c>kernel_list.{i}</c> [1, features, kernelDim], <c>output_linear</c>; buffers
/// <c>multiplier</c> [1, features, 1], <c>kernel_norm</c> [1, features, 1], <c>kernel_norm_initialized</c> [].
/// </para>
/// </summary>
public sealed class GConv : ForgeModule<Tensor, Tensor>
{
    // decay_min = decay_max = 2 in Archai: every feature's multiplier is 2.
    const double Decay = 2.0;

    public GConv(int features, int maxLength, int kernelDim) : base(nameof(GConv))
    {
        Features = features;
        var scales = LongConvolution.ScaleCount(maxLength, kernelDim);
        KernelLength = LongConvolution.KernelLength(maxLength, kernelDim);
        register_parameter("D", new Parameter(randn(1, features)));
        register_module("kernel_list", _kernels = new ParameterSequence(Enumerable.Range(0, scales).Select(_ => randn(1, features, kernelDim))));
        register_module("output_linear", _outputLinear = nn.Linear(features, features));
        register_buffer("multiplier", full(1, features, 1, Decay));
        register_buffer("kernel_norm", ones(1, features, 1));
        register_buffer("kernel_norm_initialized", zeros(Array.Empty<long>(), dtype: ScalarType.Float32));
    }

    readonly ParameterSequence _kernels;
    readonly Linear _outputLinear;

    public int Features { get; }
    /// <summary>Taps of the full kernel (kernelDim · 2^(scales-1)): how far back the convolution reaches.</summary>
    public int KernelLength { get; }

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>The whole sequence, or (with <paramref name="state"/>) the positions after those it has seen.</summary>
    public Tensor Forward(Tensor x, ConvolutionState? state)
    {
        var u = x.transpose(-1, -2);                                   // [B, F, n]
        var kernel = state?.Kernel("k") ?? Kernel();
        if (state is not null && state.Kernel("k") is null) state.KeepKernel("k", kernel);

        var full = state?.Extend("u", u, KernelLength - 1) ?? u;       // history + new, [B, F, ≤ K-1 + n]
        var y = LongConvolution.CausalConv(full, kernel, u.shape[^1]) + u * get_parameter("D")!.unsqueeze(-1);
        state?.Consumed(u.shape[^1]);
        y = nn.functional.gelu(y).transpose(-1, -2);                   // [B, n, F]
        return _outputLinear.forward(y);
    }

    /// <summary>The normalised kernel [features, taps]; the first call fixes the norm, as in Archai.</summary>
    Tensor Kernel()
    {
        var kernel = LongConvolution.MultiScaleKernel(_kernels, get_buffer("multiplier")!);
        var norm = get_buffer("kernel_norm")!;
        var initialized = get_buffer("kernel_norm_initialized")!;
        if (!LongConvolution.IsSet(initialized)) LongConvolution.InitializeNorm(kernel, norm, initialized);
        return (kernel / norm).squeeze(0);
    }
}
