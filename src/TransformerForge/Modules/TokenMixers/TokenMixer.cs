using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// A causal token mixer of Archai's Transformer++ search space (tfpp): it owns <c>opHeads</c> of a layer's
/// <c>totalHeads</c> heads, reads <c>x</c> [batch, seq, hiddenSize] and returns [batch, seq, OpSize] where
/// OpSize = opHeads · hiddenSize / totalHeads, so mixers sharing a layer concatenate back to hiddenSize.
/// </summary>
public abstract class TokenMixer : ForgeModule<Tensor, Tensor>
{
    protected TokenMixer(string name, int hiddenSize, int totalHeads, int opHeads) : base(name)
    {
        if (totalHeads <= 0 || hiddenSize % totalHeads != 0)
            throw new ArgumentException($"hidden size {hiddenSize} is not divisible by {totalHeads} total heads");
        if (opHeads <= 0 || opHeads > totalHeads) throw new ArgumentOutOfRangeException(nameof(opHeads));
        HiddenSize = hiddenSize;
        TotalHeads = totalHeads;
        OpHeads = opHeads;
    }

    public int HiddenSize { get; }
    public int TotalHeads { get; }
    public int OpHeads { get; }
    public int HeadSize => HiddenSize / TotalHeads;
    public int OpSize => OpHeads * HeadSize;
}
