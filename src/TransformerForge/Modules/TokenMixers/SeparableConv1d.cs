using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>sep_conv1d</c> token mixer: ReLU(Linear dim → DimOut), then a depth-wise convolution over the sequence
/// and ReLU. Output i sees inputs i-kernelSize+1 .. i (zeros before the start), which is what Archai's padding of
/// kernelSize-1 on both sides and keeping the first L outputs computes. Its decoding state is the last kernelSize-1
/// convolution inputs.
/// Names: <c>conv_map_in</c> (Linear), <c>conv</c> (Conv1d weight [DimOut, 1, kernelSize], bias [DimOut]).
/// </summary>
public sealed class SeparableConv1d : TokenMixer
{
    readonly Linear _convMapIn;
    readonly Conv1d _conv;

    public SeparableConv1d(int dim, int dimHead, int heads, int kernelSize)
        : base(nameof(SeparableConv1d), dim, dimHead, heads)
    {
        if (kernelSize <= 0) throw new ArgumentOutOfRangeException(nameof(kernelSize));
        KernelSize = kernelSize;
        register_module("conv_map_in", _convMapIn = nn.Linear(dim, DimOut));
        register_module("conv", _conv = nn.Conv1d(DimOut, DimOut, kernelSize, padding: kernelSize - 1, groups: DimOut));
    }

    public int KernelSize { get; }

    public override TokenMixerState NewState() => new HistoryState();

    public override Tensor Forward(Tensor x, TokenMixerState? state)
    {
        var history = StateAs<HistoryState>(state);
        var length = x.shape[1];
        var hidden = nn.functional.relu(_convMapIn.forward(x)).transpose(-1, -2);      // [B, C, n]

        // What comes before: zeros at the start of a sequence, else the kept inputs.
        var before = history?.Inputs ?? zeros(hidden.shape[0], DimOut, KernelSize - 1, dtype: hidden.dtype, device: hidden.device);
        var padded = cat([before, hidden], -1);
        history?.Keep(padded.narrow(-1, padded.shape[^1] - (KernelSize - 1), KernelSize - 1), length);

        var convolved = nn.functional.conv1d(padded, _conv.weight!, _conv.bias, groups: DimOut);   // [B, C, n]
        return nn.functional.relu(convolved).transpose(-1, -2);
    }

    /// <summary>The last kernelSize-1 convolution inputs, [batch, DimOut, kernelSize-1].</summary>
    sealed class HistoryState : TokenMixerState
    {
        public Tensor? Inputs => Get("inputs");

        public void Keep(Tensor inputs, long n)
        {
            Set("inputs", inputs);
            Advance(n);
        }
    }
}
