using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>MixedAttentionBlock</c> (tfpp/mixed_op.py): a layer's heads are shared out among token mixers, every
/// mixer reads the same input, their outputs are concatenated in allocation order (back to hiddenSize features) and
/// mixed by <c>out_proj</c>. Names: <c>ops.{i}.*</c>, <c>out_proj</c> (Linear hidden → hidden).
/// </summary>
public sealed class MixedAttentionBlock : ForgeModule<Tensor, Tensor>
{
    readonly ModuleList<TokenMixer> _ops;
    readonly Linear _outProj;

    public MixedAttentionBlock(int hiddenSize, IReadOnlyList<TokenMixer> ops) : base(nameof(MixedAttentionBlock))
    {
        if (ops.Count == 0) throw new ArgumentException("a mixed block needs at least one op", nameof(ops));
        var total = ops.Sum(op => op.OpSize);
        if (total != hiddenSize) throw new ArgumentException($"ops produce {total} features, not the hidden size {hiddenSize}", nameof(ops));
        HiddenSize = hiddenSize;
        register_module("ops", _ops = nn.ModuleList(ops.ToArray()));
        register_module("out_proj", _outProj = nn.Linear(hiddenSize, hiddenSize));
    }

    /// <summary>
    /// From Archai's arch config: op i gets round(totalHeads · share_i) heads (Python's round: half to even), ops with
    /// none are left out, and the heads must add up to totalHeads.
    /// </summary>
    public static MixedAttentionBlock FromAllocation(IReadOnlyList<(string Op, double Share)> allocation, TokenMixerOptions options)
    {
        var heads = allocation.Select(a => (a.Op, Heads: (int)Math.Round(options.TotalHeads * a.Share, MidpointRounding.ToEven))).ToList();
        if (heads.Sum(h => h.Heads) != options.TotalHeads)
            throw new ArgumentException($"allocation gives {heads.Sum(h => h.Heads)} heads, not {options.TotalHeads}", nameof(allocation));
        var ops = heads.Where(h => h.Heads > 0).Select(h => TokenMixerFactory.Create(h.Op, h.Heads, options)).ToList();
        return new MixedAttentionBlock(options.HiddenSize, ops);
    }

    public int HiddenSize { get; }

    public IReadOnlyList<TokenMixer> Ops => _ops.ToList();

    public override Tensor forward(Tensor x)
    {
        var outputs = _ops.Select(op => op.forward(x)).ToList();
        return _outProj.forward(cat(outputs, -1));
    }
}
