using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>sgconv</c> and <c>sgconv3</c> token mixers: a GLU input projection (Dauphin et al. 2017) to DimOut
/// features, a global causal convolution, then GELU. The convolution is SGConv's (<see cref="GConv"/>, Li et al. 2022)
/// or, with <c>h3</c>, SGConv kernels in an H3-style block (<see cref="GConv3"/>, head dimension = the op's head count,
/// as in Archai). Its decoding state is the convolution's (<see cref="ConvolutionState"/>).
/// Names: <c>in_proj.0</c> (Linear dim → 2·DimOut), <c>sgconv.*</c>.
/// </summary>
public sealed class SGConv : TokenMixer
{
    readonly Sequential _inProj;
    readonly GConv? _gconv;
    readonly GConv3? _gconv3;

    /// <param name="maxSeqLen">Longest sequence: the kernel's scales double kernelSize until they cover it.</param>
    public SGConv(int dim, int dimHead, int heads, int kernelSize, int maxSeqLen, bool h3 = false)
        : base(h3 ? "SGConv3" : nameof(SGConv), dim, dimHead, heads)
    {
        KernelSize = kernelSize;
        register_module("in_proj", _inProj = nn.Sequential(("0", nn.Linear(dim, 2 * DimOut)), ("1", nn.GLU(-1))));
        if (h3) register_module("sgconv", _gconv3 = new GConv3(DimOut, heads, maxSeqLen, kernelSize));
        else register_module("sgconv", _gconv = new GConv(DimOut, maxSeqLen, kernelSize));
    }

    public int KernelSize { get; }

    public override TokenMixerState NewState() => new ConvolutionState();

    public override Tensor Forward(Tensor x, TokenMixerState? state)
    {
        var conv = StateAs<ConvolutionState>(state);
        var u = _inProj.forward(x);
        var y = _gconv is not null ? _gconv.Forward(u, conv) : _gconv3!.Forward(u, conv);
        return nn.functional.gelu(y);
    }
}
