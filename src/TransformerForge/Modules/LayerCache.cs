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
/// Callers only append and read; how the tensors are stored is this class's business: keys and values go into
/// preallocated buffers, written in place, that double in length when full (so a token costs two small copies instead
/// of two concatenations of everything cached); when the keys need gradients they are concatenated instead, since
/// autograd cannot follow a buffer that is overwritten in place.
/// Everything returned is owned by the cache: use it, do not dispose it or keep it past the next append.
/// </summary>
public sealed class LayerCache : IDisposable
{
    Tensor? _keys, _values, _contextKeys, _contextValues;
    long _length;
    readonly Dictionary<CacheHistory, Tensor> _histories = new();
    readonly Dictionary<string, Tensor?> _derived = new();

    /// <summary>Positions a buffer holds when it is first made (it doubles from there).</summary>
    public const long InitialCapacity = 64;

    /// <summary>Self-attention key positions cached so far (Transformer-XL memories included).</summary>
    public long Length => _length;

    /// <summary>Positions the key buffer holds before it must grow (equal to <see cref="Length"/> when keys are concatenated).</summary>
    public long Capacity => _keys?.shape[2] ?? 0;

    /// <summary>Names of the tensors made by <see cref="Derived"/> so far.</summary>
    public IReadOnlyCollection<string> DerivedNames => _derived.Keys;

    /// <summary>
    /// Appends this call's self-attention keys and values ([b, h, n, d], already rotated) and returns those of every
    /// cached position, oldest first, the new ones last.
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(Tensor keys, Tensor values)
    {
        long n = keys.shape[2];
        if (keys.requires_grad || values.requires_grad)
        {
            // Training through the cache: keep autograd's graph intact.
            if (_keys is not null)
            {
                keys = cat(new[] { Cached(_keys), keys }, 2);
                values = cat(new[] { Cached(_values!), values }, 2);
            }
            Replace(ref _keys, keys);
            Replace(ref _values, values);
            _length = keys.shape[2];
            return (_keys!, _values!);
        }
        if (_keys is null || _length + n > _keys.shape[2] || !SameLayout(_keys, keys) || !SameLayout(_values!, values))
        {
            long capacity = Math.Max(InitialCapacity, Math.Max(2 * (_keys?.shape[2] ?? 0), _length + n));
            Replace(ref _keys, Grow(_keys, keys, capacity));
            Replace(ref _values, Grow(_values, values, capacity));
        }
        using (var scope = NewDisposeScope())
        {
            _keys!.narrow(2, _length, n).copy_(keys);
            _values!.narrow(2, _length, n).copy_(values);
        }
        _length += n;
        return (Cached(_keys), Cached(_values!));
    }

    /// <summary>The cached positions of a buffer (all of a concatenated tensor).</summary>
    Tensor Cached(Tensor buffer) => buffer.shape[2] == _length ? buffer : buffer.narrow(2, 0, _length);

    /// <summary>Whether a buffer can take <paramref name="t"/>: same batch, heads, features, dtype and device.</summary>
    static bool SameLayout(Tensor buffer, Tensor t) =>
        buffer.shape[0] == t.shape[0] && buffer.shape[1] == t.shape[1] && buffer.shape[3] == t.shape[3]
        && buffer.dtype == t.dtype && buffer.device.ToString() == t.device.ToString();

    /// <summary>A buffer of <paramref name="capacity"/> positions shaped like <paramref name="like"/>, holding the cached ones.</summary>
    Tensor Grow(Tensor? old, Tensor like, long capacity)
    {
        var buffer = empty(new[] { like.shape[0], like.shape[1], capacity, like.shape[3] }, dtype: like.dtype, device: like.device);
        if (old is not null && _length > 0)
        {
            if (!SameLayout(old, like))
                throw new InvalidOperationException("keys appended to a layer cache changed batch, heads, size, dtype or device");
            using var scope = NewDisposeScope();
            buffer.narrow(2, 0, _length).copy_(old.narrow(2, 0, _length));
        }
        return buffer;
    }

    /// <summary>
    /// A tensor derived from the weights, made once per decoding run (the model does not change while it decodes),
    /// e.g. attention's stacked q/k/v projection.
    /// </summary>
    public Tensor Derived(string name, Func<Tensor> make) => DerivedOrNull(name, make)!;

    /// <summary>As <see cref="Derived"/>, for a tensor that may not exist (a bias): null is kept too.</summary>
    Tensor? DerivedOrNull(string name, Func<Tensor?> make)
    {
        if (_derived.TryGetValue(name, out var t)) return t;
        t = make()?.detach().DetachFromDisposeScope();
        _derived[name] = t;
        return t;
    }

    /// <summary>
    /// A linear projection x·Wᵀ + b that decodes faster: while decoding (a cache, no gradients) Wᵀ is made contiguous
    /// once per run under <paramref name="name"/>, and each call multiplies by it. A decoding step multiplies one row by
    /// every weight matrix, which is bound by reading the weights, and libtorch's BLAS (MKL) reads an [in, out] matrix
    /// for x·W about twice as fast as the [out, in] one nn.Linear keeps (docs/benchmarks.md). Without a cache, or with
    /// gradients, it is the plain linear. <paramref name="weight"/> and <paramref name="bias"/> are called once per run
    /// when decoding, every call otherwise.
    /// </summary>
    public static Tensor Linear(LayerCache? cache, string name, Tensor x, Func<Tensor> weight, Func<Tensor?> bias)
    {
        if (cache is null || is_grad_enabled()) return nn.functional.linear(x, weight(), bias());
        var transposed = cache.Derived(name, () => weight().t().contiguous());
        var b = cache.DerivedOrNull(name + ".bias", bias);
        var y = matmul(x, transposed);
        return b is null ? y : y.add_(b);
    }

    /// <inheritdoc cref="Linear(LayerCache?, string, Tensor, Func{Tensor}, Func{Tensor?})"/>
    public static Tensor Linear(LayerCache? cache, string name, Tensor x, TorchSharp.Modules.Linear layer) =>
        Linear(cache, name, x, () => layer.weight!, () => layer.bias);

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
        foreach (var t in new[] { _keys, _values, _contextKeys, _contextValues }.Concat(_histories.Values).Concat(_derived.Values)) t?.Dispose();
        _keys = _values = _contextKeys = _contextValues = null;
        _length = 0;
        _histories.Clear();
        _derived.Clear();
    }

    /// <summary>Replaces a cached tensor, keeping the new one alive outside any dispose scope.</summary>
    static void Replace(ref Tensor? slot, Tensor value)
    {
        var old = slot;
        slot = value.DetachFromDisposeScope();
        if (!ReferenceEquals(old, slot)) old?.Dispose();
    }
}
