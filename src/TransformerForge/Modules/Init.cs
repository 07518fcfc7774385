using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>Initialisations x-transformers prescribes where PyTorch's defaults are not used.</summary>
public static class Init
{
    /// <summary>Zero weight and bias: a branch that starts as the identity of the residual stream.</summary>
    public static void Zero(Linear layer)
    {
        using var _ = no_grad();
        layer.weight!.zero_();
        layer.bias?.zero_();
    }

    /// <summary>Fills a parameter in place without recording gradients.</summary>
    public static void Fill(Tensor t, double value)
    {
        using var _ = no_grad();
        t.fill_(value);
    }
}
