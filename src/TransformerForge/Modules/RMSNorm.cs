using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>RMSNorm (Zhang & Sennrich 2019): x / RMS(x) times a learned gain per feature (x-transformers' eps 1e-8).</summary>
public sealed class RMSNorm : ForgeModule<Tensor, Tensor>
{
    readonly double _scale, _eps;

    public RMSNorm(int dim, double eps = 1e-8) : base(nameof(RMSNorm))
    {
        _scale = Math.Pow(dim, -0.5); _eps = eps;
        register_parameter("g", new Parameter(ones(dim)));
    }

    public override Tensor forward(Tensor x)
    {
        // Mixed precision: the statistics and the division in float32, the result in the activations' dtype.
        if (LowPrecision.IsLow(x.dtype))
        {
            using var scope = NewDisposeScope();
            return forward(x.to_type(ScalarType.Float32)).to_type(x.dtype).MoveToOuterDisposeScope();
        }
        using var norm = x.norm(-1, keepdim: true) * _scale;
        return x / norm.clamp_min(_eps) * get_parameter("g")!;
    }
}
