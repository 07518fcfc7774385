using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>sgconv3</c> token mixer: a GLU input projection to OpSize features, <see cref="GConv3"/> (SGConv kernels
/// in an H3-style block, with head dimension = the op's head count as in Archai), then GELU.
/// Names: <c>in_proj.0</c> (Linear hidden → 2·OpSize), <c>sgconv.*</c>.
/// </summary>
public sealed class SGConv3 : TokenMixer
{
    readonly Sequential _inProj;
    readonly GConv3 _sgconv;

    public SGConv3(int hiddenSize, int totalHeads, int opHeads, int kernelSize, int maxPositionEmbeddings)
        : base(nameof(SGConv3), hiddenSize, totalHeads, opHeads)
    {
        KernelSize = kernelSize;
        register_module("in_proj", _inProj = nn.Sequential(("0", nn.Linear(hiddenSize, 2 * OpSize)), ("1", nn.GLU(-1))));
        register_module("sgconv", _sgconv = new GConv3(OpSize, opHeads, maxPositionEmbeddings, kernelSize));
    }

    public int KernelSize { get; }

    public override Tensor forward(Tensor x) => nn.functional.gelu(_sgconv.forward(_inProj.forward(x)));
}
