using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>sgconv</c> token mixer: a GLU input projection (Dauphin et al. 2017) to OpSize features, SGConv's
/// global causal convolution (<see cref="GConv"/>, Li et al. 2022), then GELU.
/// Names: <c>in_proj.0</c> (Linear hidden → 2·OpSize), <c>sgconv.*</c>.
/// </summary>
public sealed class SGConv : TokenMixer
{
    readonly Sequential _inProj;
    readonly GConv _sgconv;

    public SGConv(int hiddenSize, int totalHeads, int opHeads, int kernelSize, int maxPositionEmbeddings)
        : base(nameof(SGConv), hiddenSize, totalHeads, opHeads)
    {
        KernelSize = kernelSize;
        register_module("in_proj", _inProj = nn.Sequential(("0", nn.Linear(hiddenSize, 2 * OpSize)), ("1", nn.GLU(-1))));
        register_module("sgconv", _sgconv = new GConv(OpSize, maxPositionEmbeddings, kernelSize));
    }

    public int KernelSize { get; }

    public override Tensor forward(Tensor x) => nn.functional.gelu(_sgconv.forward(_inProj.forward(x)));
}
