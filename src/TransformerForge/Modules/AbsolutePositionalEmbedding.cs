using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Learned absolute positions (GPT-style), scaled by dim^-0.5 as in x-transformers; with <c>l2norm_embed</c> (1.40)
/// unscaled and l2-normalised per position instead.
/// </summary>
public sealed class AbsolutePositionalEmbedding : ForgeModule
{
    readonly Embedding _emb;
    readonly double _scale;
    readonly bool _l2norm;

    public AbsolutePositionalEmbedding(int dim, int maxSeqLen, bool l2norm = false) : base(nameof(AbsolutePositionalEmbedding))
    {
        _scale = l2norm ? 1 : Math.Pow(dim, -0.5);
        _l2norm = l2norm;
        _emb = nn.Embedding(maxSeqLen, dim);
        register_module("emb", _emb);
    }

    public long MaxSeqLen => _emb.weight!.shape[0];

    /// <summary>Embeddings of positions offset..offset+n-1, shaped [1, n, dim].</summary>
    public Tensor Forward(long n, long offset, Device device)
    {
        if (offset + n > MaxSeqLen)
            throw new ArgumentException($"sequence position {offset + n} exceeds max_seq_len {MaxSeqLen} of the absolute positional embedding");
        using var pos = arange(offset, offset + n, dtype: ScalarType.Int64, device: device);
        var e = _emb.forward(pos) * _scale;
        return (_l2norm ? nn.functional.normalize(e, p: 2, dim: -1) : e).unsqueeze(0);
    }
}
