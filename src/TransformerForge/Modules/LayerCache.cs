using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>The short input histories a layer's sliding-window blocks keep between decoding calls.</summary>
public enum CacheHistory
{
    /// <summary>Token shifting: the last (masked) inputs, [b, s, dim].</summary>
    ShiftTokens,
    /// <summary>Primer's depth-wise convolutions: the last projected (not yet convolved) queries, keys, values.</summary>
    QueryConv,
    KeyConv,
    ValueConv,
}

/// <summary>
/// Per-layer state kept between calls during incremental decoding: self-attention keys and values (appended to,
/// never rewritten), the cross-attention context's keys and values (computed once), and short input histories.
/// Callers only append and read; how the tensors are stored is this class's business (today each append replaces
/// one concatenated tensor; preallocated buffers written in place can take its place without touching a caller).
/// Everything returned is owned by the cache: use it, do not dispose it or keep it past the next append.
/// </summary>
public sealed class LayerCache : IDisposable
{
    Tensor? _keys, _values, _contextKeys, _contextValues;
    readonly Dictionary<CacheHistory, Tensor> _histories = new();

    /// <summary>Self-attention key positions cached so far (Transformer-XL memories included).</summary>
    public long Length => _keys?.shape[2] ?? 0;

    /// <summary>
    /// Appends this call's self-attention keys and values ([b, h, n, d], already rotated) and returns those of every
    /// cached position, oldest first, the new ones last.
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(Tensor keys, Tensor values)
    {
        if (_keys is not null)
        {
            keys = cat(new[] { _keys, keys }, 2);
            values = cat(new[] { _values!, values }, 2);
        }
        Replace(ref _keys, keys);
        Replace(ref _values, values);
        return (_keys!, _values!);
    }

    /// <summary>The cross-attention keys and values of the context, once <see cref="SetContext"/> has stored them.</summary>
    public (Tensor Keys, Tensor Values)? Context => _contextKeys is null ? null : (_contextKeys, _contextValues!);

    /// <summary>Stores the context's keys and values: the context is the same for every decoding call.</summary>
    public void SetContext(Tensor keys, Tensor values)
    {
        Replace(ref _contextKeys, keys);
        Replace(ref _contextValues, values);
    }

    /// <summary>The last inputs kept for <paramref name="kind"/>, or null at the start of the sequence.</summary>
    public Tensor? History(CacheHistory kind) => _histories.GetValueOrDefault(kind);

    /// <summary>Keeps <paramref name="last"/> (detached) as the history of <paramref name="kind"/>, replacing the previous one.</summary>
    public void KeepHistory(CacheHistory kind, Tensor last)
    {
        var slot = _histories.GetValueOrDefault(kind);
        Replace(ref slot, last.detach());
        _histories[kind] = slot!;
    }

    public void Dispose()
    {
        foreach (var t in new[] { _keys, _values, _contextKeys, _contextValues }.Concat(_histories.Values)) t?.Dispose();
        _keys = _values = _contextKeys = _contextValues = null;
        _histories.Clear();
    }

    /// <summary>Replaces a cached tensor, keeping the new one alive outside any dispose scope.</summary>
    static void Replace(ref Tensor? slot, Tensor value)
    {
        var old = slot;
        slot = value.DetachFromDisposeScope();
        if (!ReferenceEquals(old, slot)) old?.Dispose();
    }
}
