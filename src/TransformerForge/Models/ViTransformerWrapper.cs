using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Config;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>
/// Vision Transformer (Dosovitskiy et al. 2020, x-transformers' <c>ViTransformerWrapper</c>): non-overlapping patches
/// become tokens. 0.20 prepends a learned [cls] token whose final state feeds a feed-forward head; 1.40 normalises the
/// patches before and after their projection, has no [cls] token and classifies the mean of the final states with one
/// linear layer (the stack's own final norm before it).
/// </summary>
public sealed class ViTransformerWrapper : ForgeModule<Tensor, Tensor>
{
    public ViTransformerWrapperConfig Config { get; }
    public AttentionLayers AttnLayers { get; }
    readonly Linear _patchToEmbedding;
    readonly BiaslessLayerNorm? _patchNorm, _embeddingNorm;
    readonly OptionalDropout _dropout;
    readonly LayerNorm? _norm;
    readonly FeedForward? _mlpHead;
    readonly Linear? _linearHead;
    readonly bool _v140;

    public ViTransformerWrapper(ViTransformerWrapperConfig c) : base(nameof(ViTransformerWrapper))
    {
        Config = c;
        int dim = c.AttnLayers.Dim;
        int numPatches = (c.ImageSize / c.PatchSize) * (c.ImageSize / c.PatchSize);
        int patchDim = 3 * c.PatchSize * c.PatchSize;
        _v140 = c.Version == XTransformersVersion.V1_40;

        _patchToEmbedding = nn.Linear(patchDim, dim);
        if (_v140)
        {
            register_parameter("pos_embedding", new Parameter(randn(1, numPatches, dim)));
            register_module("patch_to_embedding", nn.Sequential(_patchNorm = new BiaslessLayerNorm(patchDim), _patchToEmbedding, _embeddingNorm = new BiaslessLayerNorm(dim)));
        }
        else
        {
            register_parameter("pos_embedding", new Parameter(randn(1, numPatches + 1, dim)));
            register_module("patch_to_embedding", _patchToEmbedding);
            register_parameter("cls_token", new Parameter(randn(1, 1, dim)));
        }
        register_module("dropout", _dropout = new OptionalDropout(c.EmbDropout));
        register_module("attn_layers", AttnLayers = new AttentionLayers(c.AttnLayers));
        if (!_v140) register_module("norm", _norm = nn.LayerNorm(dim));
        if (c.NumClasses is { } classes)
        {
            if (_v140) register_module("mlp_head", _linearHead = nn.Linear(dim, classes));
            else register_module("mlp_head", _mlpHead = new FeedForward(dim, new FeedForwardOptions { Dropout = c.Dropout }, dimOut: classes));
        }
    }

    /// <summary>Class logits [b, num_classes] (or embeddings [b, patches+1, dim] without a head) for images [b, 3, H, W].</summary>
    public override Tensor forward(Tensor img) => Forward(img);

    public Tensor Forward(Tensor img, bool returnEmbeddings = false)
    {
        int p = Config.PatchSize;
        if (img.dim() != 4 || img.shape[1] != 3 || img.shape[2] != Config.ImageSize || img.shape[3] != Config.ImageSize)
            throw new ArgumentException($"expected images [b, 3, {Config.ImageSize}, {Config.ImageSize}], got [{string.Join(", ", img.shape)}]");
        long b = img.shape[0], gh = img.shape[2] / p, gw = img.shape[3] / p;

        // 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'
        var patches = img.reshape(b, 3, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, p * p * 3);
        if (_v140) return Forward140(patches, returnEmbeddings);
        var x = _patchToEmbedding.forward(patches);
        long n = x.shape[1];
        x = cat(new[] { get_parameter("cls_token")!.expand(b, -1, -1), x }, 1);
        x = x + get_parameter("pos_embedding")!.narrow(1, 0, n + 1);
        x = _dropout.forward(x);

        var (y, _) = AttnLayers.Forward(x);
        y = _norm!.forward(y);
        if (_mlpHead is null || returnEmbeddings) return y;
        return _mlpHead.Forward(y.select(1, 0));
    }

    /// <summary>1.40: normalised patches → projection → norm, positions, the stack; the mean over patches feeds the head.</summary>
    Tensor Forward140(Tensor patches, bool returnEmbeddings)
    {
        var x = _embeddingNorm!.forward(_patchToEmbedding.forward(_patchNorm!.forward(patches)));
        x = x + get_parameter("pos_embedding")!.narrow(1, 0, x.shape[1]);
        x = _dropout.forward(x);
        var (y, _) = AttnLayers.Forward(x);
        if (_linearHead is null || returnEmbeddings) return y;
        return _linearHead.forward(y.mean(new long[] { 1 }));
    }
}
