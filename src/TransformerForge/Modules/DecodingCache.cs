using TorchSharp;
using TransformerForge.Generation;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Incremental-decoding state of one layer stack: per-layer keys/values (and shift/convolution histories), how many
/// positions were processed, and the key-side padding mask so far. Feeding a sequence in pieces through a cache gives
/// the same outputs as feeding it whole.
/// </summary>
public sealed class DecodingCache : IDecodingState
{
    public List<LayerCache> Layers { get; } = new();
    /// <summary>Positions processed by the stack (memory tokens included, Transformer-XL memories not).</summary>
    public long Length { get; private set; }
    /// <summary>Keys held by each self-attention layer: <see cref="Length"/> plus the memories given on the first call.</summary>
    public long KeyLength { get; private set; }
    /// <summary>Real tokens processed (for absolute positions; memory tokens excluded). Maintained by the wrapper.</summary>
    public long TokenLength { get; set; }
    /// <summary>xPos: the centre the first call scaled its positions around, kept for every later call (set by the stack).</summary>
    public long? XposCenter { get; set; }
    Tensor? _keyMask;

    public void Init(int layers)
    {
        foreach (var l in Layers) l.Dispose();
        Layers.Clear();
        for (int i = 0; i < layers; i++) Layers.Add(new LayerCache());
    }

    /// <summary>Extends the stored key mask by <paramref name="mask"/> (new positions; null = all visible) and returns it, or null while everything is visible.</summary>
    public Tensor? AppendMask(Tensor? mask, long batch, long n, long memLen, Device device)
    {
        if (mask is null && _keyMask is null) return null;
        // Until the first mask arrives every earlier key (memories included: they come only on the first call) was visible.
        var old = _keyMask ?? ones(batch, KeyLength + memLen, dtype: ScalarType.Bool, device: device);
        var full = cat(new[] { old, mask ?? ones(batch, n, dtype: ScalarType.Bool, device: device) }, 1);
        var keep = full.detach().DetachFromDisposeScope();
        _keyMask?.Dispose();
        _keyMask = keep;
        return keep;
    }

    internal void Advance(long n, long memLen)
    {
        Length += n;
        KeyLength += n + memLen;
    }

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        _keyMask?.Dispose();
    }
}
