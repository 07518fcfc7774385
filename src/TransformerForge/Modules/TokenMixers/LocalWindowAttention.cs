using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Causal sliding-window attention as in lucidrains' local-attention (the version Archai vendors, with its exact
/// window): the sequence is cut into windows of <c>windowSize</c>; each query sees its own window and the one before
/// it, restricted to keys j with i - windowSize ≤ j ≤ i. Queries and keys are first rotated by rotary embeddings
/// (Su et al. 2021) over the whole head, positions 0..L-1.
/// <para>
/// A quirk kept from that version: the "window before" the first window is padding filled with -1 (keys and values
/// alike, not rotated), which the first window's queries also attend to. Archai masks it out only when the sequence
/// had to be padded to whole windows, so there an earlier output depends on the length of the whole sequence (a
/// length-24 sequence and its first 21 positions give different outputs at position 0 with windows of 8). Here the
/// -1 window is always attended, as Archai does whenever the length is a multiple of the window (its parity fixture,
/// and training at the usual lengths): every output depends only on the positions up to it, so that a prefix, a
/// longer sequence and cached decoding all agree.
/// </para>
/// Names: <c>rel_pos.inv_freq</c>. Inputs and output are [batch·heads, L, dim_head].
/// </summary>
public sealed class LocalWindowAttention : ForgeModule
{
    const double PadValue = -1;
    readonly RotaryEmbedding _relPos;

    public LocalWindowAttention(int windowSize, int dimHead) : base(nameof(LocalWindowAttention))
    {
        if (windowSize <= 0) throw new ArgumentOutOfRangeException(nameof(windowSize));
        WindowSize = windowSize;
        register_module("rel_pos", _relPos = new RotaryEmbedding(dimHead));
    }

    public int WindowSize { get; }

    /// <summary>The whole sequence, window by window.</summary>
    public Tensor Forward(Tensor q, Tensor k, Tensor v)
    {
        var (batch, length, dim) = (q.shape[0], q.shape[1], q.shape[2]);
        (q, k) = Rotate(q, k, 0);

        // Pad the sequence (with zeros) to whole windows; the padding lies in every real query's future.
        var padded = (length + WindowSize - 1) / WindowSize * WindowSize;
        if (padded != length) (q, k, v) = (PadSeq(q, padded - length), PadSeq(k, padded - length), PadSeq(v, padded - length));
        var windows = padded / WindowSize;

        var bq = q.view(batch, windows, WindowSize, dim);
        var bk = LookAround(k.view(batch, windows, WindowSize, dim));  // [B, W, 2·window, D]
        var bv = LookAround(v.view(batch, windows, WindowSize, dim));

        var positions = arange(padded, device: q.device).view(1, windows, WindowSize);
        var queryPos = positions.unsqueeze(-1);                        // [1, W, window, 1]
        var keyPos = LookAround(positions.unsqueeze(-1)).squeeze(-1).unsqueeze(-2);  // [1, W, 1, 2·window]

        var sim = einsum("bwie,bwje->bwij", bq, bk) * Math.Pow(dim, -0.5);
        sim = sim.masked_fill(Hidden(queryPos, keyPos), MaxNegative(sim.dtype));
        var attention = sim.softmax(-1);
        var output = einsum("bwij,bwje->bwie", attention, bv).reshape(batch, padded, dim);
        return output.narrow(1, 0, length);
    }

    /// <summary>
    /// Incremental decoding: queries, keys and values of positions offset .. offset+n-1, and the rotated keys and values
    /// of up to <see cref="WindowSize"/> positions just before them (null at the start). Returns the output and the
    /// new positions' rotated keys (to keep for later calls).
    /// </summary>
    public (Tensor Output, Tensor RotatedKeys) Forward(Tensor q, Tensor k, Tensor v, long offset, Tensor? pastKeys, Tensor? pastValues)
    {
        var (batch, n, dim) = (q.shape[0], q.shape[1], q.shape[2]);
        (q, k) = Rotate(q, k, offset);
        long past = pastKeys?.shape[1] ?? 0;

        // Keys: the -1 window (at position -1), the kept positions, the new ones.
        var pad = full(batch, WindowSize, dim, PadValue, dtype: q.dtype, device: q.device);
        var keys = cat(pastKeys is null ? [pad, k] : [pad, pastKeys, k], 1);
        var values = cat(pastValues is null ? [pad, v] : [pad, pastValues, v], 1);
        var keyPos = cat([full(WindowSize, -1L, device: q.device), arange(offset - past, offset + n, device: q.device)]).unsqueeze(0);
        var queryPos = arange(offset, offset + n, device: q.device).unsqueeze(1);

        var sim = matmul(q, keys.transpose(1, 2)) * Math.Pow(dim, -0.5);  // [B, n, keys]
        sim = sim.masked_fill(Hidden(queryPos, keyPos), MaxNegative(sim.dtype));
        return (matmul(sim.softmax(-1), values), k);
    }

    /// <summary>
    /// Which keys a query may not see: later ones and those more than a window back; the -1 window (position -1)
    /// lies exactly a window back from the first window's queries only, so only they see it.
    /// </summary>
    Tensor Hidden(Tensor queryPos, Tensor keyPos) => (queryPos < keyPos).logical_or(queryPos > keyPos + WindowSize);

    (Tensor, Tensor) Rotate(Tensor q, Tensor k, long offset)
    {
        var length = q.shape[1];
        var angles = _relPos.Forward(offset + length).squeeze(0).narrow(1, offset, length);   // [1, n, D]
        return (RotaryEmbedding.Apply(q, angles), RotaryEmbedding.Apply(k, angles));
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
