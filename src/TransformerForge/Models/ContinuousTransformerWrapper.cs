using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Config;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>
/// Vectors in, vectors out (x-transformers' <c>ContinuousTransformerWrapper</c>): project in, positions, layers, norm,
/// project out. 1.40: the projections have no bias and the norm is the stack's <c>final_norm</c>.
/// </summary>
public sealed class ContinuousTransformerWrapper : ForgeModule<Tensor, Tensor>
{
    public ContinuousTransformerWrapperConfig Config { get; }
    public AttentionLayers AttnLayers { get; }
    readonly AbsolutePositionalEmbedding? _posEmb;
    readonly OptionalDropout _embDropout;
    readonly Linear? _projectIn, _projectOut;
    readonly LayerNorm? _norm;

    public ContinuousTransformerWrapper(ContinuousTransformerWrapperConfig c) : base(nameof(ContinuousTransformerWrapper))
    {
        Config = c;
        int dim = c.AttnLayers.Dim;
        bool v140 = c.Version == XTransformersVersion.V1_40;
        if (c.UsePosEmb && !c.AttnLayers.HasPosEmb) register_module("pos_emb", _posEmb = new AbsolutePositionalEmbedding(dim, c.MaxSeqLen));
        register_module("emb_dropout", _embDropout = new OptionalDropout(c.EmbDropout));
        if (c.DimIn is { } din) register_module("project_in", _projectIn = nn.Linear(din, dim, hasBias: !v140));
        register_module("attn_layers", AttnLayers = new AttentionLayers(c.AttnLayers));
        if (!v140) register_module("norm", _norm = nn.LayerNorm(dim));
        if (c.DimOut is { } dout) register_module("project_out", _projectOut = nn.Linear(dim, dout, hasBias: !v140));
    }

    public override Tensor forward(Tensor x) => Forward(x);

    public Tensor Forward(Tensor x, Tensor? mask = null, Tensor? context = null, Tensor? contextMask = null,
        IReadOnlyList<Tensor>? mems = null, bool returnEmbeddings = false)
    {
        var h = _projectIn?.forward(x) ?? x;
        if (_posEmb is not null) h = h + _posEmb.Forward(h.shape[1], 0, h.device).to_type(h.dtype);
        h = _embDropout.forward(h);
        var (y, _) = AttnLayers.Forward(h, context, mask?.to_type(ScalarType.Bool), contextMask?.to_type(ScalarType.Bool), mems: mems);
        if (_norm is not null) y = _norm.forward(y);
        return returnEmbeddings || _projectOut is null ? y : _projectOut.forward(y);
    }
}
