using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>ScaleNorm (Nguyen & Salazar 2019): x / (‖x‖·dim^-0.5) times one learned scalar.</summary>
public sealed class ScaleNorm : ForgeModule<Tensor, Tensor>
{
    readonly double _scale, _eps;

    public ScaleNorm(int dim, double eps = 1e-5) : base(nameof(ScaleNorm))
    {
        _scale = Math.Pow(dim, -0.5); _eps = eps;
        register_parameter("g", new Parameter(ones(1)));
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
