using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>sgconv</c> and <c>sgconv3</c> token mixers: a GLU input projection (Dauphin et al. 2017) to OpSize
/// features, a global causal convolution, then GELU. The convolution is SGConv's (<see cref="GConv"/>, Li et al. 2022)
/// or, with <c>h3</c>, SGConv kernels in an H3-style block (<see cref="GConv3"/>, head dimension = the op's head count,
/// as in Archai). Names: <c>in_proj.0</c> (Linear hidden → 2·OpSize), <c>sgconv.*</c>.
/// </summary>
public sealed class SGConv : TokenMixer
{
    readonly Sequential _inProj;
    readonly nn.Module<Tensor, Tensor> _sgconv;

    public SGConv(int hiddenSize, int totalHeads, int opHeads, int kernelSize, int maxPositionEmbeddings, bool h3 = false)
        : base(h3 ? "SGConv3" : nameof(SGConv), hiddenSize, totalHeads, opHeads)
    {
        KernelSize = kernelSize;
        register_module("in_proj", _inProj = nn.Sequential(("0", nn.Linear(hiddenSize, 2 * OpSize)), ("1", nn.GLU(-1))));
        _sgconv = h3 ? new GConv3(OpSize, opHeads, maxPositionEmbeddings, kernelSize) : new GConv(OpSize, maxPositionEmbeddings, kernelSize);
        register_module("sgconv", _sgconv);
    }

    public int KernelSize { get; }

    public override Tensor forward(Tensor x) => nn.functional.gelu(_sgconv.forward(_inProj.forward(x)));
}
