using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Causal sliding-window attention as in lucidrains' local-attention (the version Archai vendors, with its exact
/// window): the sequence is cut into windows of <c>windowSize</c>; each query sees its own window and the one before
/// it, restricted to keys j with i - windowSize ≤ j ≤ i. Queries and keys are first rotated by rotary embeddings
/// (Su et al. 2021) over the whole head, positions 0..L-1.
/// <para>
/// A quirk kept for parity: the "window before" the first window is padding filled with -1 (keys and values alike),
/// and it is only masked when the sequence itself had to be padded to a multiple of the window size. Otherwise the
/// first window's queries also attend to those constant -1 keys. It is the same for every input, so causality holds.
/// </para>
/// Names: <c>rel_pos.inv_freq</c>. Inputs and output are [batch·heads, L, headDim].
/// </summary>
public sealed class LocalWindowAttention : ForgeModule
{
    const double PadValue = -1;
    readonly RotaryEmbedding _relPos;

    public LocalWindowAttention(int windowSize, int headDim) : base(nameof(LocalWindowAttention))
    {
        if (windowSize <= 0) throw new ArgumentOutOfRangeException(nameof(windowSize));
        WindowSize = windowSize;
        register_module("rel_pos", _relPos = new RotaryEmbedding(headDim));
    }

    public int WindowSize { get; }

    public Tensor Forward(Tensor q, Tensor k, Tensor v)
    {
        var (batch, length, dim) = (q.shape[0], q.shape[1], q.shape[2]);
        var angles = _relPos.Forward(length).squeeze(0);               // [1, L, D]
        q = RotaryEmbedding.Apply(q, angles);
        k = RotaryEmbedding.Apply(k, angles);

        // Pad the sequence (with zeros) to whole windows.
        var padded = (length + WindowSize - 1) / WindowSize * WindowSize;
        var needsPad = padded != length;
        if (needsPad) (q, k, v) = (PadSeq(q, padded - length), PadSeq(k, padded - length), PadSeq(v, padded - length));
        var windows = padded / WindowSize;

        var bq = q.view(batch, windows, WindowSize, dim);
        var bk = LookAround(k.view(batch, windows, WindowSize, dim));  // [B, W, 2·window, D]
        var bv = LookAround(v.view(batch, windows, WindowSize, dim));

        var positions = arange(padded, device: q.device).view(1, windows, WindowSize);
        var queryPos = positions.unsqueeze(-1);                        // [1, W, window, 1]
        var keyPos = LookAround(positions.unsqueeze(-1)).squeeze(-1).unsqueeze(-2);  // [1, W, 1, 2·window]

        var sim = einsum("bwie,bwje->bwij", bq, bk) * Math.Pow(dim, -0.5);
        // Causal, and exactly windowSize back (look-backward = 1 window).
        var mask = (queryPos < keyPos).logical_or(queryPos > keyPos + WindowSize);
        if (needsPad) mask = mask.logical_or(keyPos == PadValue);
        sim = sim.masked_fill(mask, MaxNegative(sim.dtype));

        var attention = sim.softmax(-1);
        var output = einsum("bwij,bwje->bwie", attention, bv).reshape(batch, padded, dim);
        return output.narrow(1, 0, length);
    }

    static Tensor PadSeq(Tensor t, long extra) => nn.functional.pad(t, [0, 0, 0, extra]);

    /// <summary>[B, W, n, ...] -> [B, W, 2n, ...]: each window preceded by the previous one (-1 before the first).</summary>
    static Tensor LookAround(Tensor x)
    {
        var windows = x.shape[1];
        var before = full_like(x.narrow(1, 0, 1), PadValue);
        var previous = cat([before, x.narrow(1, 0, windows - 1)], 1);
        return cat([previous, x], 2);
    }

    static double MaxNegative(ScalarType dtype) => dtype == ScalarType.Float64 ? -double.MaxValue : -float.MaxValue;
}
