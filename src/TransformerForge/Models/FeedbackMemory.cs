using TransformerForge.Generation;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>
/// The Feedback Transformer's memory, which is also its generation cache: the keys and values of every earlier
/// step's memory vector. The original model keeps one key stack and one value stack per layer (each layer projects
/// the memory itself); the shared key/value variant keeps a single pair read by every layer. When steps come with a
/// padding mask, the memory also records which entries are real tokens.
/// Create with <see cref="FeedbackTransformer.NewMemory"/>; it grows by one entry per
/// <see cref="FeedbackTransformer.Step"/>.
/// </summary>
public sealed class FeedbackMemory : IDecodingState
{
    private readonly AppendOnlyStack[] _keys;
    private readonly AppendOnlyStack[] _values;
    private Tensor? _visible;

    internal FeedbackMemory(int layers, bool sharedKeyValues)
    {
        Layers = layers;
        SharedKeyValues = sharedKeyValues;
        var stacks = sharedKeyValues ? 1 : layers;
        _keys = Enumerable.Range(0, stacks).Select(_ => new AppendOnlyStack()).ToArray();
        _values = Enumerable.Range(0, stacks).Select(_ => new AppendOnlyStack()).ToArray();
    }

    public int Layers { get; }
    public bool SharedKeyValues { get; }

    /// <summary>Number of steps remembered.</summary>
    public long Length => _keys[0].Count;

    /// <summary>
    /// Keys and values <c>[Length, batch, heads, dim_head]</c> that <paramref name="layer"/> attends over, and which
    /// entries are real tokens (<c>[Length, batch]</c>; null when no step was masked).
    /// </summary>
    internal (Tensor Keys, Tensor Values, Tensor? Visible) Read(int layer) =>
        (_keys[StackOf(layer)].Read(), _values[StackOf(layer)].Read(), _visible);

    /// <summary>
    /// Appends one step: a key and a value <c>[batch, heads, dim_head]</c> per stack, and the step's padding mask
    /// <c>[batch]</c> (true = real token; null = all real).
    /// </summary>
    internal void Append(IReadOnlyList<(Tensor Key, Tensor Value)> entries, Tensor? mask)
    {
        if (entries.Count != _keys.Length)
            throw new ArgumentException($"expected {_keys.Length} key/value pairs, got {entries.Count}");
        AppendVisibility(mask, entries[0].Key.shape[0], entries[0].Key.device);
        for (var i = 0; i < entries.Count; i++)
        {
            _keys[i].Append(entries[i].Key);
            _values[i].Append(entries[i].Value);
        }
    }

    /// <summary>
    /// Keeps the remembered steps but stops gradients from flowing into them, for truncated backpropagation through
    /// time: run a segment, backward, <c>Detach()</c>, run the next segment with the same memory.
    /// </summary>
    public void Detach()
    {
        foreach (var stack in _keys.Concat(_values)) stack.Detach();
    }

    public void Dispose()
    {
        foreach (var stack in _keys.Concat(_values)) stack.Dispose();
        _visible?.Dispose();
        _visible = null;
    }

    private void AppendVisibility(Tensor? mask, long batch, Device device)
    {
        // Nothing to record while every step so far was unmasked.
        if (mask is null && _visible is null) return;
        using var _ = no_grad();
        var earlier = _visible ?? ones(Length, batch, dtype: ScalarType.Bool, device: device);
        var current = (mask?.to_type(ScalarType.Bool) ?? ones(batch, dtype: ScalarType.Bool, device: device)).unsqueeze(0);
        var visible = cat([earlier, current], dim: 0).DetachFromDisposeScope();
        _visible?.Dispose();
        _visible = visible;
    }

    private int StackOf(int layer) => SharedKeyValues ? 0 : layer;
}
