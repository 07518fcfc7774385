using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>Learned absolute positions (GPT-style), scaled by dim^-0.5 as in x-transformers.</summary>
public sealed class AbsolutePositionalEmbedding : ForgeModule
{
    readonly Embedding _emb;
    readonly double _scale;

    public AbsolutePositionalEmbedding(int dim, int maxSeqLen) : base(nameof(AbsolutePositionalEmbedding))
    {
        _scale = Math.Pow(dim, -0.5);
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
        return (_emb.forward(pos) * _scale).unsqueeze(0);
    }
}
