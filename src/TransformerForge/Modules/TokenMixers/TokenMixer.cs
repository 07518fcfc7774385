using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// A causal token mixer of Archai's Transformer++ search space (tfpp): it owns <see cref="Heads"/> of a layer's heads,
/// each <see cref="DimHead"/> wide, reads <c>x</c> [batch, seq, <see cref="Dim"/>] and returns [batch, seq,
/// <see cref="DimOut"/>], DimOut = Heads · DimHead, so that the mixers sharing a layer concatenate back to Dim.
/// <para>
/// <see cref="Forward(Tensor, TokenMixerState?)"/> with a state (from <see cref="NewState"/>) is incremental decoding:
/// <c>x</c> holds only the positions after those the state has seen, the output is theirs, and the state grows by
/// them. Feeding a sequence in pieces gives the outputs of feeding it whole.
/// </para>
/// </summary>
public abstract class TokenMixer : ForgeModule<Tensor, Tensor>
{
    protected TokenMixer(string name, int dim, int dimHead, int heads) : base(name)
    {
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "must be positive");
        if (dimHead <= 0) throw new ArgumentOutOfRangeException(nameof(dimHead), dimHead, "must be positive");
        if (heads <= 0 || heads * dimHead > dim)
            throw new ArgumentOutOfRangeException(nameof(heads), heads, $"must be positive and fit the width: heads · dim_head ≤ {dim}");
        Dim = dim;
        DimHead = dimHead;
        Heads = heads;
    }

    /// <summary>Width of the input.</summary>
    public int Dim { get; }
    /// <summary>Width of each of the layer's heads (the layer's dim / its heads).</summary>
    public int DimHead { get; }
    /// <summary>Heads this mixer owns.</summary>
    public int Heads { get; }
    /// <summary>Width of the output: Heads · DimHead.</summary>
    public int DimOut => Heads * DimHead;

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>The whole sequence (<paramref name="state"/> null), or the positions after what the state has seen.</summary>
    public abstract Tensor Forward(Tensor x, TokenMixerState? state);

    /// <summary>An empty decoding state for this mixer.</summary>
    public abstract TokenMixerState NewState();

    /// <summary>The state as this mixer's own kind (or null), with a clear error for a state of another mixer.</summary>
    protected static T? StateAs<T>(TokenMixerState? state) where T : TokenMixerState => state switch
    {
        null => null,
        T s => s,
        _ => throw new ArgumentException($"a {typeof(T).Name} is needed, got a {state.GetType().Name}", nameof(state)),
    };
}

/// <summary>
/// What a token mixer keeps between decoding calls (keys and values, a window, a convolution's input history, ...).
/// Tensors are kept outside any dispose scope and freed by <see cref="Dispose"/>.
/// </summary>
public abstract class TokenMixerState : IDisposable
{
    readonly Dictionary<string, Tensor> _kept = new();

    /// <summary>Positions seen so far.</summary>
    public long Length { get; protected set; }

    /// <summary>Advances <see cref="Length"/> after a call has consumed <paramref name="n"/> positions.</summary>
    internal void Advance(long n) => Length += n;

    /// <summary>The kept tensor named <paramref name="name"/>, or null before the first call.</summary>
    protected Tensor? Get(string name) => _kept.GetValueOrDefault(name);

    /// <summary>Replaces the kept tensor <paramref name="name"/> (detached from autograd and from dispose scopes).</summary>
    protected void Set(string name, Tensor value)
    {
        var keep = value.detach().DetachFromDisposeScope();
        if (_kept.Remove(name, out var old) && !ReferenceEquals(old, keep)) old.Dispose();
        _kept[name] = keep;
    }

    public virtual void Dispose()
    {
        foreach (var t in _kept.Values) t.Dispose();
        _kept.Clear();
        GC.SuppressFinalize(this);
    }
}
