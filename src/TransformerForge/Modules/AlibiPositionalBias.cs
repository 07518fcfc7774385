using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// ALiBi (Press et al. 2021, "Train Short, Test Long"): a per-head linear bias on key position with geometric slopes.
/// Only the first <c>alibi_num_heads</c> heads get a bias; the rest stay position-free. With <c>learned</c> the log
/// slopes are parameters.
/// </summary>
public sealed class AlibiPositionalBias : ForgeModule
{
    readonly int _alibiHeads;

    public AlibiPositionalBias(int alibiHeads, bool learned) : base(nameof(AlibiPositionalBias))
    {
        _alibiHeads = alibiHeads;
        // [1, alibiHeads, 1, 1] in float32 as x-transformers computes them; not saved (persistent=False there).
        var slopes = tensor(Slopes(alibiHeads).Select(s => (float)s).ToArray()).reshape(1, alibiHeads, 1, 1);
        register_buffer("slopes", slopes, persistent: false);
        if (learned) register_parameter("learned_logslopes", new Parameter(log(slopes)));
    }

    /// <summary>Bias [1, heads, 1, j] for keys at positions 0..j-1 (softmax is shift-invariant per query, so this is -slope·distance).</summary>
    public Tensor Forward(long heads, long j, Device device, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var slopes = (get_parameter("learned_logslopes") is { } l ? l.exp() : get_buffer("slopes")!).to(device);
        slopes = nn.functional.pad(slopes, new long[] { 0, 0, 0, 0, 0, heads - _alibiHeads });
        var pos = arange(j, device: device).to_type(slopes.dtype);
        return (pos.reshape(1, 1, 1, j) * slopes).to_type(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// x-transformers 1.40's bias [1, heads, i, j]: −slope·|q − k| for the last <paramref name="i"/> of
    /// <paramref name="j"/> positions as queries, so it also works without a causal mask (an Encoder).
    /// </summary>
    public Tensor ForwardDistance(long heads, long i, long j, Device device, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var slopes = get_buffer("slopes")!.to(device);
        slopes = nn.functional.pad(slopes, new long[] { 0, 0, 0, 0, 0, heads - _alibiHeads });
        var q = arange(j - i, j, device: device).reshape(1, 1, i, 1);
        var k = arange(j, device: device).reshape(1, 1, 1, j);
        var distance = -(k - q).abs().to_type(slopes.dtype);
        return (distance * slopes).to_type(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Geometric slopes 2^(-8/n·k); for a head count that is not a power of two, interleave the next power's.</summary>
    public static double[] Slopes(int heads)
    {
        static IEnumerable<double> PowerOf2(int n)
        {
            double start = Math.Pow(2, -Math.Pow(2, -(Math.Log2(n) - 3)));
            return Enumerable.Range(0, n).Select(i => start * Math.Pow(start, i));
        }
        if (Math.Log2(heads) % 1 == 0) return PowerOf2(heads).ToArray();
        int closest = 1 << (int)Math.Floor(Math.Log2(heads));
        return PowerOf2(closest).Concat(PowerOf2(2 * closest).Where((_, i) => i % 2 == 0).Take(heads - closest)).ToArray();
    }
}
