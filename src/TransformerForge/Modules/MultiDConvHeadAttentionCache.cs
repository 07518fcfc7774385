using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// What <see cref="MultiDConvHeadAttention.ForwardCached"/> needs to continue a causal self-attention: the last
/// <c>kernelSize - 1</c> projected (not yet convolved) positions of queries, keys and values, and the convolved keys
/// and values of every position so far (<c>[batch, heads, length, d_k]</c>).
/// </summary>
public sealed record MultiDConvHeadAttentionCache(
    Tensor QueryHistory,
    Tensor KeyHistory,
    Tensor ValueHistory,
    Tensor Keys,
    Tensor Values)
{
    /// <summary>Number of positions attended so far.</summary>
    public long Length => Keys.shape[2];
}
