using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// RMSNorm (Zhang &amp; Sennrich 2019): x / RMS(x) times a learned gain per feature <c>g</c>. x-transformers 0.20 clamps
/// the RMS at 1e-8; 1.40 stores the gain as an offset from 1 (<paramref name="unitOffset"/>, so weight decay pulls it
/// towards 1) and, without a gain, is its <c>SimpleRMSNorm</c>.
/// </summary>
public sealed class RMSNorm : ForgeModule<Tensor, Tensor>
{
    readonly double _scale, _eps, _offset;

    /// <param name="dim">Features normalised together.</param>
    /// <param name="eps">Lower bound of RMS(x) (0.20: 1e-8; 1.40 bounds ‖x‖ at 1e-12, i.e. RMS at 1e-12 / √dim).</param>
    /// <param name="unitOffset">The gain is g + 1, g starting at 0.</param>
    /// <param name="gain">A learned gain at all (1.40's SimpleRMSNorm has none).</param>
    public RMSNorm(int dim, double eps = 1e-8, bool unitOffset = false, bool gain = true) : base(nameof(RMSNorm))
    {
        _scale = Math.Pow(dim, -0.5); _eps = eps; _offset = unitOffset ? 1 : 0;
        if (gain) register_parameter("g", new Parameter(full(dim, 1.0 - _offset)));
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
        var normed = x / norm.clamp_min(_eps);
        return get_parameter("g") is { } g ? normed * (_offset == 0 ? g : g + _offset) : normed;
    }
}
