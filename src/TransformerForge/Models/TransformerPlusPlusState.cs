using TransformerForge.Generation;
using TransformerForge.Modules.TokenMixers;

namespace TransformerForge.Models;

/// <summary>
/// Incremental-decoding state of a <see cref="TransformerPlusPlus"/> model: per layer, the state of each of its token
/// mixers (keys and values, a window, convolution inputs, LSH buckets), and the positions seen.
/// </summary>
public sealed class TransformerPlusPlusState : IDecodingState
{
    internal TransformerPlusPlusState(IEnumerable<IReadOnlyList<TokenMixerState>> layers) => Layers = layers.ToList();

    /// <summary>Each layer's mixer states, in the layer's mixer order.</summary>
    public IReadOnlyList<IReadOnlyList<TokenMixerState>> Layers { get; }

    public long Length { get; private set; }

    internal void Advance(long n) => Length += n;

    public void Dispose()
    {
        foreach (var state in Layers.SelectMany(l => l)) state.Dispose();
    }
}
