using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Which keys each query may not attend to in one attention call, built once for both paths (libtorch's fused
/// kernel and the explicit score matrix) so that they cannot disagree: padding of queries and keys (cached positions
/// and Transformer-XL memories come with the key mask; persistent memory key/values are always visible), an explicit
/// <c>attn_mask</c>, <c>max_attend_past</c> and causality. Causality is kept apart from the rest so that the fused
/// kernel can take a plain causal mask as a flag instead of a tensor.
/// </summary>
/// <param name="Masked">The non-causal part, true = hidden, broadcastable to [b, h, queries, keys]; null when nothing is.</param>
internal sealed record AttentionMask(Tensor? Masked, bool Causal, long Queries, long Keys)
{
    /// <param name="inputs">The block's inputs: <c>Mask</c> (queries), <c>KeyMask</c> (self-attention keys), <c>ContextMask</c>, <c>AttnMask</c>.</param>
    /// <param name="numMemKv">Persistent memory key/values placed before all other keys.</param>
    /// <param name="v140">
    /// x-transformers 1.40's rules: only keys are masked for padding (a padding query's output is zeroed afterwards),
    /// and <c>max_attend_past</c> measures distances without the persistent memory (0.20: both query and key padding,
    /// distances over every key).
    /// </param>
    public static AttentionMask Build(BlockInputs inputs, bool isCross, bool causal, int? maxAttendPast, int numMemKv,
        long batch, long queries, long keys, Device device, bool v140 = false)
    {
        Tensor? masked = null;

        // Padding: a (query, key) pair counts only when both are real tokens (1.40: when the key is).
        var keyMask = isCross ? inputs.ContextMask : inputs.KeyMask ?? inputs.Mask;
        var queryMask = v140 ? null : inputs.Mask;
        if (queryMask is not null || keyMask is not null)
        {
            var q = queryMask ?? ones(batch, queries, dtype: ScalarType.Bool, device: device);
            var k = keyMask ?? ones(batch, keys - numMemKv, dtype: ScalarType.Bool, device: device);
            var visible = q.reshape(batch, 1, queries, 1).logical_and(k.reshape(batch, 1, 1, k.shape[1]));
            if (numMemKv > 0) visible = nn.functional.pad(visible, new long[] { numMemKv, 0 }, value: 1).to_type(ScalarType.Bool);
            masked = visible.logical_not();
        }

        if (inputs.AttnMask is { } attnMask) masked = Or(masked, ExpandAttnMask(attnMask).logical_not());

        if (maxAttendPast is { } past)
        {
            // Distance from each query (the last `queries` of `keys` positions) back to each key, as x-transformers 0.20 measures it.
            long measured = v140 ? keys - numMemKv : keys;
            var distance = arange(measured - queries, measured, device: device).reshape(1, 1, queries, 1) - arange(measured, device: device).reshape(1, 1, 1, measured);
            var tooFar = distance.gt(past);
            if (v140 && numMemKv > 0) tooFar = nn.functional.pad(tooFar, new long[] { numMemKv, 0 }, value: 0).to_type(ScalarType.Bool);
            masked = Or(masked, tooFar);
        }
        // One query is the newest position: causality hides nothing from it (each decoding step after the prompt).
        return new AttentionMask(masked, causal && queries > 1, queries, keys);
    }

    /// <summary>Nothing but a square causal mask: the fused kernel's <c>is_causal</c> flag says it all.</summary>
    public bool IsPlainCausal => Causal && Masked is null && Queries == Keys;

    /// <summary>Every hidden pair (true = hidden), causality included; null when every pair is visible.</summary>
    public Tensor? Hidden(Device device) => Causal ? Or(Masked, CausalMask(Queries, Keys, device)) : Masked;

    /// <summary>Query i (the last i of j positions) may not see keys after it; earlier keys (memory, cache) stay visible.</summary>
    static Tensor CausalMask(long i, long j, Device device)
    {
        var r = arange(i, device: device);
        var mask = r.reshape(i, 1).lt(r.reshape(1, i));
        return nn.functional.pad(mask, new long[] { j - i, 0 }, value: 0).to_type(ScalarType.Bool).reshape(1, 1, i, j);
    }

    static Tensor ExpandAttnMask(Tensor m) => m.dim() switch
    {
        2 => m.reshape(1, 1, m.shape[0], m.shape[1]),
        3 => m.unsqueeze(0),
        4 => m,
        _ => throw new ArgumentException("attention mask must have 2, 3 or 4 dimensions"),
    };

    static Tensor? Or(Tensor? a, Tensor? b) => a is null ? b : b is null ? a : a.logical_or(b);
}
