using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>MixedAttentionBlock</c> (tfpp/mixed_op.py): a layer's heads are shared out among token mixers, every
/// mixer reads the same input, their outputs are concatenated in allocation order (back to dim features) and mixed by
/// <c>out_proj</c>. Its decoding state is one state per mixer. Names: <c>ops.{i}.*</c>, <c>out_proj</c> (Linear dim → dim).
/// </summary>
public sealed class MixedAttentionBlock : ForgeModule<Tensor, Tensor>
{
    readonly ModuleList<TokenMixer> _ops;
    readonly Linear _outProj;

    public MixedAttentionBlock(int dim, IReadOnlyList<TokenMixer> ops) : base(nameof(MixedAttentionBlock))
    {
        if (ops.Count == 0) throw new ArgumentException("a mixed block needs at least one op", nameof(ops));
        var total = ops.Sum(op => op.DimOut);
        if (total != dim) throw new ArgumentException($"ops produce {total} features, not the width {dim}", nameof(ops));
        Dim = dim;
        register_module("ops", _ops = nn.ModuleList(ops.ToArray()));
        register_module("out_proj", _outProj = nn.Linear(dim, dim));
    }

    /// <summary>The ops of <paramref name="allocation"/> (op name and heads, in order; ops with no heads left out).</summary>
    public static MixedAttentionBlock Create(IReadOnlyList<(string Op, int Heads)> allocation, TokenMixerOptions options)
    {
        var heads = allocation.Sum(a => a.Heads);
        if (heads != options.Heads) throw new ArgumentException($"allocation gives {heads} heads, not {options.Heads}", nameof(allocation));
        var ops = allocation.Where(a => a.Heads > 0).Select(a => TokenMixerFactory.Create(a.Op, a.Heads, options)).ToList();
        return new MixedAttentionBlock(options.Dim, ops);
    }

    /// <summary>
    /// Heads per op from Archai's <c>op_allocation</c> shares: op i gets round(heads · share_i) heads (Python's round:
    /// half to even), as <c>MixedAttentionBlock</c> computes them.
    /// </summary>
    public static IReadOnlyList<(string Op, int Heads)> HeadsFromShares(IReadOnlyList<(string Op, double Share)> shares, int heads) =>
        shares.Select(a => (a.Op, (int)Math.Round(heads * a.Share, MidpointRounding.ToEven))).ToList();

    public int Dim { get; }

    public IReadOnlyList<TokenMixer> Ops => _ops.ToList();

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>The whole sequence, or (with <paramref name="state"/> from <see cref="NewState"/>) the positions after those it has seen.</summary>
    public Tensor Forward(Tensor x, IReadOnlyList<TokenMixerState>? state)
    {
        if (state is not null && state.Count != _ops.Count) throw new ArgumentException($"expected {_ops.Count} op states, got {state.Count}", nameof(state));
        var outputs = _ops.Select((op, i) => op.Forward(x, state?[i])).ToList();
        return _outProj.forward(cat(outputs, -1));
    }

    /// <summary>An empty decoding state: one per op.</summary>
    public IReadOnlyList<TokenMixerState> NewState() => _ops.Select(op => op.NewState()).ToList();
}
