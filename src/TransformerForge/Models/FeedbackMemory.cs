using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>
/// The Feedback Transformer's memory, which is also its generation cache: the keys and values of every earlier
/// step's memory vector. The original model keeps one key stack and one value stack per layer (each layer projects
/// the memory itself); the shared key/value variant keeps a single pair read by every layer.
/// Create with <see cref="FeedbackTransformer.NewMemory"/>; it grows by one entry per
/// <see cref="FeedbackTransformer.Step"/>.
/// </summary>
public sealed class FeedbackMemory : IDisposable
{
    private readonly AppendOnlyStack[] _keys;
    private readonly AppendOnlyStack[] _values;

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

    /// <summary>Keys and values <c>[Length, batch, heads, d_k]</c> that <paramref name="layer"/> attends over.</summary>
    internal (Tensor Keys, Tensor Values) Read(int layer) =>
        (_keys[StackOf(layer)].Read(), _values[StackOf(layer)].Read());

    /// <summary>Appends one step: a key and a value <c>[batch, heads, d_k]</c> per stack.</summary>
    internal void Append(IReadOnlyList<(Tensor Key, Tensor Value)> entries)
    {
        if (entries.Count != _keys.Length)
            throw new ArgumentException($"expected {_keys.Length} key/value pairs, got {entries.Count}");
        for (var i = 0; i < entries.Count; i++)
        {
            _keys[i].Append(entries[i].Key);
            _values[i].Append(entries[i].Value);
        }
    }

    public void Dispose()
    {
        foreach (var stack in _keys.Concat(_values)) stack.Dispose();
    }

    private int StackOf(int layer) => SharedKeyValues ? 0 : layer;
}
