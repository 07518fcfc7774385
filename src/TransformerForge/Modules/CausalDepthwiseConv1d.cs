using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Depth-wise causal convolution along the sequence: output position i of a channel is
/// <c>bias + Σ_k weight[k] · x[i - (kernelSize - 1) + k]</c>, so it sees positions i-kernelSize+1 .. i and never the
/// future. Input is <c>[batch, seq, groups · channels]</c>; the <c>channels</c> kernels are applied to each of the
/// <c>groups</c> blocks of the feature dimension (groups = heads for kernels shared by heads, 1 for one kernel per
/// feature).
/// <para>
/// Parameters (PyTorch <c>Conv1d(channels, channels, kernelSize, groups: channels)</c> layout):
/// <c>weight</c> [channels, 1, kernelSize], <c>bias</c> [channels].
/// </para>
/// </summary>
public sealed class CausalDepthwiseConv1d : ForgeModule<Tensor, Tensor>
{
    public CausalDepthwiseConv1d(int channels, int kernelSize = 3) : base(nameof(CausalDepthwiseConv1d))
    {
        if (kernelSize < 1) throw new ArgumentOutOfRangeException(nameof(kernelSize));
        Channels = channels;
        KernelSize = kernelSize;

        // PyTorch's Conv1d initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = kernelSize for depth-wise.
        var bound = 1.0 / Math.Sqrt(kernelSize);
        register_parameter("weight", new Parameter(empty(channels, 1, kernelSize).uniform_(-bound, bound)));
        register_parameter("bias", new Parameter(empty(channels).uniform_(-bound, bound)));
    }

    public int Channels { get; }
    public int KernelSize { get; }

    /// <summary>Number of past positions a step needs to see: <c>kernelSize - 1</c>.</summary>
    public int CacheLength => KernelSize - 1;

    public Parameter Weight => get_parameter("weight")!;
    public Parameter Bias => get_parameter("bias")!;

    /// <summary>Convolves a whole sequence <c>[batch, seq, features]</c>; positions before the start count as zero.</summary>
    public override Tensor forward(Tensor x) => Forward(x, cache: null).Output;

    /// <summary>
    /// Incremental use: <paramref name="cache"/> holds the last <see cref="CacheLength"/> input positions seen so far
    /// (<c>[batch, kernelSize - 1, features]</c>; null = start of the sequence, i.e. zeros). Returns the convolved
    /// new positions and the cache to pass with the next positions.
    /// </summary>
    public (Tensor Output, Tensor Cache) Forward(Tensor x, Tensor? cache)
    {
        var (batch, seq, features) = (x.shape[0], x.shape[1], x.shape[2]);
        if (features % Channels != 0)
            throw new ArgumentException($"feature size {features} is not a multiple of {Channels} channels", nameof(x));
        var groups = features / Channels;

        // The missing history is zero, exactly like the left padding of a causal convolution.
        cache ??= zeros(batch, CacheLength, features, dtype: x.dtype, device: x.device);
        var window = cat([cache, x], dim: 1);

        // [batch, history + seq, groups · channels] -> [batch · groups, channels, history + seq] for conv1d.
        var channelsFirst = window
            .view(batch, CacheLength + seq, groups, Channels)
            .permute(0, 2, 3, 1)
            .reshape(batch * groups, Channels, CacheLength + seq);
        // A "valid" convolution over history + new positions yields exactly one output per new position.
        var convolved = nn.functional.conv1d(channelsFirst, Weight, Bias, groups: Channels);
        var output = convolved
            .view(batch, groups, Channels, seq)
            .permute(0, 3, 1, 2)
            .reshape(batch, seq, features);

        var newCache = window.narrow(1, seq, CacheLength);
        return (output, newCache);
    }
}
