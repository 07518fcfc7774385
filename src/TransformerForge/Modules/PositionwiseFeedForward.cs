using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Position-wise feed-forward network of the original Transformer (Vaswani et al. 2017, section 3.3), as labml's
/// <c>FeedForward</c> with its defaults: <c>layer2(dropout(relu(layer1(x))))</c>.
/// Parameters: <c>layer1</c> (dim→innerDim), <c>layer2</c> (innerDim→dim); labml calls the sizes d_model and d_ff.
/// </summary>
public sealed class PositionwiseFeedForward : ForgeModule<Tensor, Tensor>
{
    private readonly Linear _layer1, _layer2;
    private readonly Dropout _dropout;

    public PositionwiseFeedForward(int dim, int innerDim, double dropout = 0.0) : base(nameof(PositionwiseFeedForward))
    {
        _layer1 = nn.Linear(dim, innerDim);
        _layer2 = nn.Linear(innerDim, dim);
        _dropout = nn.Dropout(dropout);
        register_module("layer1", _layer1);
        register_module("layer2", _layer2);
        register_module("dropout", _dropout);
    }

    public override Tensor forward(Tensor x)
    {
        var hidden = nn.functional.relu(_layer1.forward(x));
        return _layer2.forward(_dropout.forward(hidden));
    }
}
