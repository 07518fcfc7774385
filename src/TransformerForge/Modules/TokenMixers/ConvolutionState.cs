using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Decoding state of the long convolutions (<see cref="GConv"/>, <see cref="GConv3"/>): per convolution, the inputs
/// its kernel still reaches, and the normalised kernels (fixed while decoding, so built once).
/// </summary>
public sealed class ConvolutionState : TokenMixerState
{
    /// <summary>Appends <paramref name="inputs"/> [..., n] to the kept inputs named <paramref name="name"/>, keeps the last
    /// <paramref name="keep"/> and returns kept + new (what the convolution of the new positions reads).</summary>
    public Tensor Extend(string name, Tensor inputs, long keep)
    {
        var full = Get(name) is { } past ? cat([past, inputs], -1) : inputs;
        long kept = Math.Min(keep, full.shape[^1]);
        Set(name, full.narrow(-1, full.shape[^1] - kept, kept));
        return full;
    }

    public Tensor? Kernel(string name) => Get("kernel:" + name);

    public void KeepKernel(string name, Tensor kernel) => Set("kernel:" + name, kernel);

    /// <summary>Called by the mixer once a call's <paramref name="n"/> positions are consumed.</summary>
    public void Consumed(long n) => Advance(n);
}
