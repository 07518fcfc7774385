using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// SGConv's global convolution (Li et al. 2022) as Archai's <c>GConv</c> runs it in tfpp (one channel, "cat_randn"
/// kernel, GELU, no norm): every feature is convolved causally with its own sequence-long kernel, plus a skip
/// <c>D · u</c>, then mixed by <c>output_linear</c>. Input and output are [batch, seq, features].
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

    public override Tensor forward(Tensor x)
    {
        var u = x.transpose(-1, -2);                                   // [B, H, L]
        var length = u.shape[^1];

        var kernel = LongConvolution.MultiScaleKernel(_kernels, get_buffer("multiplier")!);
        var norm = get_buffer("kernel_norm")!;
        var initialized = get_buffer("kernel_norm_initialized")!;
        if (!LongConvolution.IsSet(initialized)) LongConvolution.InitializeNorm(kernel, norm, initialized);
        kernel = LongConvolution.FitLength(kernel, length) / norm;    // [1, H, L]

        var y = LongConvolution.CausalFftConv(u, kernel) + u * get_parameter("D")!.unsqueeze(-1);
        y = nn.functional.gelu(y).transpose(-1, -2);                   // [B, L, H]
        return _outputLinear.forward(y);
    }
}
