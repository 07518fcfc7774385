using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// LayerNorm without a bias and with a learned gain <c>gamma</c> (x-transformers 1.x's <c>LayerNorm</c>: bias-less
/// LayerNorm trains more stably, as in PaLM). With <paramref name="unitOffset"/> the gain is gamma + 1, gamma starting
/// at 0, so weight decay pulls it towards 1 (x-transformers' <c>norm_add_unit_offset</c>).
/// </summary>
public sealed class BiaslessLayerNorm : ForgeModule<Tensor, Tensor>
{
    readonly long[] _shape;
    readonly double _offset;

    public BiaslessLayerNorm(int dim, bool unitOffset = false) : base(nameof(BiaslessLayerNorm))
    {
        _shape = new long[] { dim };
        _offset = unitOffset ? 1 : 0;
        register_parameter("gamma", new Parameter(full(dim, 1.0 - _offset)));
    }

    public override Tensor forward(Tensor x)
    {
        // Mixed precision: the statistics in float32, the result in the activations' dtype (as RMSNorm does).
        if (LowPrecision.IsLow(x.dtype))
        {
            using var scope = NewDisposeScope();
            return forward(x.to_type(ScalarType.Float32)).to_type(x.dtype).MoveToOuterDisposeScope();
        }
        var gamma = get_parameter("gamma")!;
        return nn.functional.layer_norm(x, _shape, eps: 1e-5) * (_offset == 0 ? gamma : gamma + _offset);
    }
}
