using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>GConv3</c>: SGConv kernels (Li et al. 2022) inside an H3-style block (Fu et al. 2023, "Hungry Hungry
/// Hippos"). Keys are convolved with per-feature kernels, multiplied head-wise with values as outer products
/// (<c>headDim</c>² pairs per head), convolved again with per-head kernels, and contracted with queries.
/// Input and output are [batch, seq, features]. Its decoding state keeps both convolutions' inputs within reach.
/// <para>
/// Names: <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>, <c>output_linear</c>, <c>pw_linear</c> (saved, unused by the
/// forward as in Archai), <c>D_key</c> [1, features], <c>kernel_list_key.{i}</c> [1, features, kernelDim],
/// <c>D</c> [1, heads], <c>kernel_list.{i}</c> [1, heads, kernelDim]; buffers <c>multiplier(_key)</c>,
/// <c>kernel_norm(_key)</c>, <c>kernel_norm_initialized(_key)</c>. heads = features / headDim.
/// </para>
/// </summary>
public sealed class GConv3 : ForgeModule<Tensor, Tensor>
{
    // decay_min = decay_max = 2 in Archai: every multiplier is 2.
    const double Decay = 2.0;

    readonly Linear _qProj, _kProj, _vProj, _outputLinear;
    readonly ParameterSequence _kernelsKey, _kernels;

    public GConv3(int features, int headDim, int maxLength, int kernelDim) : base(nameof(GConv3))
    {
        if (features % headDim != 0) throw new ArgumentException($"features {features} not divisible by head dim {headDim}");
        Features = features;
        HeadDim = headDim;
        Heads = features / headDim;
        var scales = LongConvolution.ScaleCount(maxLength, kernelDim);
        KernelLength = LongConvolution.KernelLength(maxLength, kernelDim);

        register_parameter("D", new Parameter(randn(1, Heads)));
        register_parameter("D_key", new Parameter(randn(1, features)));
        register_module("kernel_list", _kernels = new ParameterSequence(Enumerable.Range(0, scales).Select(_ => randn(1, Heads, kernelDim))));
        register_module("kernel_list_key", _kernelsKey = new ParameterSequence(Enumerable.Range(0, scales).Select(_ => randn(1, features, kernelDim))));
        register_module("output_linear", _outputLinear = nn.Linear(features, features));
        register_module("q_proj", _qProj = nn.Linear(features, features));
        register_module("k_proj", _kProj = nn.Linear(features, features));
        register_module("v_proj", _vProj = nn.Linear(features, features));
        register_module("pw_linear", nn.Linear(features, features));
        register_buffer("multiplier", full(1, Heads, 1, Decay));
        register_buffer("multiplier_key", full(1, features, 1, Decay));
        register_buffer("kernel_norm", ones(1, Heads, 1));
        register_buffer("kernel_norm_key", ones(1, features, 1));
        register_buffer("kernel_norm_initialized", zeros(Array.Empty<long>(), dtype: ScalarType.Float32));
        register_buffer("kernel_norm_initialized_key", zeros(Array.Empty<long>(), dtype: ScalarType.Float32));
    }

    public int Features { get; }
    public int HeadDim { get; }
    public int Heads { get; }
    /// <summary>Taps of both full kernels: how far back the convolutions reach.</summary>
    public int KernelLength { get; }

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>The whole sequence, or (with <paramref name="state"/>) the positions after those it has seen.</summary>
    public Tensor Forward(Tensor x, ConvolutionState? state)
    {
        var (batch, length) = (x.shape[0], x.shape[1]);
        var (heads, d) = ((long)Heads, (long)HeadDim);
        var (kernelKey, kernel) = state?.Kernel("key") is { } kk ? (kk, state.Kernel("kv")!) : Kernels();
        if (state is not null && state.Kernel("key") is null)
        {
            state.KeepKernel("key", kernelKey);
            state.KeepKernel("kv", kernel);
        }

        // Projections, channels first: [B, F, n].
        var query = _qProj.forward(x).transpose(-1, -2);
        var key = _kProj.forward(x).transpose(-1, -2);
        var value = _vProj.forward(x).transpose(-1, -2);

        // First convolution: keys through their per-feature kernels, plus the D skip.
        var keys = state?.Extend("key", key, KernelLength - 1) ?? key;
        key = LongConvolution.CausalConv(keys, kernelKey, length) + key * get_parameter("D_key")!.unsqueeze(-1);

        // Head-wise outer product of keys and values: feature h·d + i of keys with h·d + j of values
        // -> [B, d(i), d(j), heads, n], then the second convolution with one kernel per head, plus the D skip.
        var kv = key.view(batch, heads, d, 1, length).permute(0, 2, 3, 1, 4)
               * value.view(batch, heads, 1, d, length).permute(0, 2, 3, 1, 4);
        var kvs = state?.Extend("kv", kv, KernelLength - 1) ?? kv;
        var y = LongConvolution.CausalConv(kvs, kernel, length) + kv * get_parameter("D")!.unsqueeze(-1);
        state?.Consumed(length);

        // Contract with queries over i: [B, d(j), heads, n] -> features ordered (j, head).
        var q = query.view(batch, heads, d, 1, length).permute(0, 2, 3, 1, 4);
        y = (y * q).sum(1).reshape(batch, d * heads, length);

        y = nn.functional.gelu(y).transpose(-1, -2);                   // [B, n, F]
        return _outputLinear.forward(y);
    }

    /// <summary>The normalised key kernel [features, taps] and value kernel [heads, taps].</summary>
    (Tensor Key, Tensor Value) Kernels()
    {
        var kernelKey = LongConvolution.MultiScaleKernel(_kernelsKey, get_buffer("multiplier_key")!);
        var kernel = LongConvolution.MultiScaleKernel(_kernels, get_buffer("multiplier")!);
        // Archai initialises both norms together, on its (value) kernel's flag.
        if (!LongConvolution.IsSet(get_buffer("kernel_norm_initialized")!))
        {
            LongConvolution.InitializeNorm(kernelKey, get_buffer("kernel_norm_key")!, get_buffer("kernel_norm_initialized_key")!);
            LongConvolution.InitializeNorm(kernel, get_buffer("kernel_norm")!, get_buffer("kernel_norm_initialized")!);
        }
        return ((kernelKey / get_buffer("kernel_norm_key")!).squeeze(0), (kernel / get_buffer("kernel_norm")!).squeeze(0));
    }
}
