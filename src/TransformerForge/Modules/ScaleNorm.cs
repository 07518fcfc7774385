using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>ScaleNorm (Nguyen &amp; Salazar 2019): x / (‖x‖·dim^-0.5) times one learned scalar (1.40: stored as an offset from 1).</summary>
public sealed class ScaleNorm : ForgeModule<Tensor, Tensor>
{
    readonly double _scale, _eps, _offset;

    public ScaleNorm(int dim, double eps = 1e-5, bool unitOffset = false) : base(nameof(ScaleNorm))
    {
        _scale = Math.Pow(dim, -0.5); _eps = eps; _offset = unitOffset ? 1 : 0;
        register_parameter("g", new Parameter(full(1, 1.0 - _offset)));
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
        var g = get_parameter("g")!;
        return x / norm.clamp_min(_eps) * (_offset == 0 ? g : g + _offset);
    }
}
