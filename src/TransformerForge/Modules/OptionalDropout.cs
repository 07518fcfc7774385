using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Dropout (Srivastava et al. 2014) that issues no operation at all when it is off: rate 0 (the default of every
/// <c>*_dropout</c> option) or evaluation mode. TorchSharp's module would still make a call and a new tensor handle,
/// a few microseconds each, which batch-1 decoding pays per layer and token. No parameters, so the state dict is unchanged.
/// </summary>
public sealed class OptionalDropout : ForgeModule<Tensor, Tensor>
{
    readonly double _p;

    public OptionalDropout(double p) : base("Dropout")
    {
        if (p is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout rate must be in [0, 1)");
        _p = p;
    }

    public double P => _p;

    public override Tensor forward(Tensor x) => _p > 0 && training ? nn.functional.dropout(x, _p, training: true) : x;
}
