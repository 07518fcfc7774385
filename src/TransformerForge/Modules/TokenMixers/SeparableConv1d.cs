using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>sep_conv1d</c> token mixer: ReLU(Linear hidden → OpSize), then a depth-wise convolution over the
/// sequence and ReLU. Padding kernelSize-1 on both sides and keeping the first L outputs makes it causal: output i
/// sees inputs i-kernelSize+1 .. i.
/// Names: <c>conv_map_in</c> (Linear), <c>conv</c> (Conv1d weight [OpSize, 1, kernelSize], bias [OpSize]).
/// </summary>
public sealed class SeparableConv1d : TokenMixer
{
    readonly Linear _convMapIn;
    readonly Conv1d _conv;

    public SeparableConv1d(int hiddenSize, int totalHeads, int opHeads, int kernelSize)
        : base(nameof(SeparableConv1d), hiddenSize, totalHeads, opHeads)
    {
        KernelSize = kernelSize;
        register_module("conv_map_in", _convMapIn = nn.Linear(hiddenSize, OpSize));
        register_module("conv", _conv = nn.Conv1d(OpSize, OpSize, kernelSize, padding: kernelSize - 1, groups: OpSize));
    }

    public int KernelSize { get; }

    public override Tensor forward(Tensor x)
    {
        var length = x.shape[1];
        var hidden = nn.functional.relu(_convMapIn.forward(x));
        var convolved = nn.functional.relu(_conv.forward(hidden.transpose(-1, -2)).transpose(-1, -2));
        // The right padding produced kernelSize-1 extra (future-seeing) positions: drop them.
        return convolved.narrow(1, 0, length);
    }
}
