using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// x-transformers 1.40's token embedding: the embedding table under <c>emb</c> (weights <c>token_emb.emb.weight</c>),
/// optionally l2-normalised per token (<c>l2norm_embed</c>). 0.20 registers the table itself as <c>token_emb</c>.
/// </summary>
public sealed class TokenEmbedding : ForgeModule
{
    public Embedding Emb { get; }
    readonly bool _l2norm;

    public TokenEmbedding(Embedding emb, bool l2norm) : base(nameof(TokenEmbedding))
    {
        Emb = emb; _l2norm = l2norm;
        register_module("emb", emb);
    }

    public Tensor Forward(Tensor tokens)
    {
        var e = Emb.forward(tokens);
        return _l2norm ? nn.functional.normalize(e, p: 2, dim: -1) : e;
    }
}
