using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>What <see cref="TransformerWrapper.Forward"/> returns: logits (or embeddings), and optionally memories and attention maps.</summary>
public sealed record WrapperOutput(Tensor Output, IReadOnlyList<Tensor>? Mems = null, IReadOnlyList<Tensor>? AttentionMaps = null);

/// <summary>
/// A token model (x-transformers' <c>TransformerWrapper</c>): token embedding + absolute positions, optional memory
/// tokens (Burtsev et al. 2020, "Memory Transformer"), the layer stack, a final norm and the logits. 0.20 keeps the
/// final norm here (<c>norm</c>) and the table as <c>token_emb</c>; 1.40 keeps the norm in the stack
/// (<c>attn_layers.final_norm</c>), the table as <c>token_emb.emb</c> and its logits layer has no bias.
/// </summary>
public sealed class TransformerWrapper : LanguageModel
{
    public TransformerWrapperConfig Config { get; }
    public AttentionLayers AttnLayers { get; }
    public override int NumTokens => Config.NumTokens;
    public override int MaxSeqLen => Config.MaxSeqLen;

    readonly Embedding _tokenEmb;
    readonly TokenEmbedding? _tokenEmbedding;
    readonly AbsolutePositionalEmbedding? _posEmb;
    readonly OptionalDropout _embDropout;
    readonly Linear? _projectEmb;
    readonly LayerNorm? _norm;
    readonly Linear? _toLogits;

    public TransformerWrapper(TransformerWrapperConfig c) : this(c, null) { }

    /// <param name="sharedTokenEmb">A token embedding owned by another model (XTransformer's <c>tie_token_emb</c>).</param>
    internal TransformerWrapper(TransformerWrapperConfig c, Embedding? sharedTokenEmb) : base(nameof(TransformerWrapper))
    {
        c.Validate();
        Config = c;
        int dim = c.AttnLayers.Dim, embDim = c.EmbDim ?? dim;
        bool v140 = c.Version == XTransformersVersion.V1_40;

        _tokenEmb = sharedTokenEmb ?? nn.Embedding(c.NumTokens, embDim);
        if (sharedTokenEmb is null)
        {
            // l2-normalised embeddings start tiny (1.40), the others with Kaiming's normal.
            if (c.L2normEmbed) nn.init.normal_(_tokenEmb.weight!, std: 1e-5);
            else nn.init.kaiming_normal_(_tokenEmb.weight!);
        }
        if (v140) register_module("token_emb", _tokenEmbedding = new TokenEmbedding(_tokenEmb, c.L2normEmbed));
        else register_module("token_emb", _tokenEmb);
        if (c.UsePosEmb && !c.AttnLayers.HasPosEmb)
        {
            register_module("pos_emb", _posEmb = new AbsolutePositionalEmbedding(embDim, c.MaxSeqLen, c.L2normEmbed));
            if (c.L2normEmbed) nn.init.normal_(_posEmb.parameters().First(), std: 1e-5);
        }
        register_module("emb_dropout", _embDropout = new OptionalDropout(c.EmbDropout));
        if (embDim != dim) register_module("project_emb", _projectEmb = nn.Linear(embDim, dim));
        register_module("attn_layers", AttnLayers = new AttentionLayers(c.AttnLayers));
        if (!v140) register_module("norm", _norm = nn.LayerNorm(dim));
        if (!c.TieEmbedding && !c.ReturnOnlyEmbed) register_module("to_logits", _toLogits = nn.Linear(dim, c.NumTokens, hasBias: !v140));
        if ((c.NumMemoryTokens ?? 0) > 0)
        {
            register_parameter("memory_tokens", new Parameter(randn(c.NumMemoryTokens!.Value, dim)));
        }
    }

    internal Embedding TokenEmbedding => _tokenEmb;

    public override Tensor Logits(Tensor tokens, Tensor? mask = null, IDecodingState? state = null) =>
        Forward(tokens, mask: mask, cache: state switch
        {
            null => null,
            DecodingCache c => c,
            _ => throw new ArgumentException($"a TransformerWrapper cannot decode with a {state.GetType().Name}"),
        }).Output;

    /// <summary>A KV cache for incremental decoding (self-attention stacks without cross-attention context only).</summary>
    public override IDecodingState? CreateDecodingState() => new DecodingCache();

    /// <summary>
    /// The full forward. <paramref name="cache"/> makes it incremental (x = only the new tokens); <paramref name="mems"/>
    /// are Transformer-XL memories (one per self-attention layer), returned updated when <paramref name="returnMems"/>.
    /// </summary>
    public WrapperOutput Forward(Tensor x, Tensor? mask = null, Tensor? context = null, Tensor? contextMask = null,
        Tensor? attnMask = null, IReadOnlyList<Tensor>? mems = null, bool returnEmbeddings = false, bool returnMems = false,
        bool returnAttn = false, DecodingCache? cache = null)
    {
        long b = x.shape[0], n = x.shape[1];
        int numMem = Config.NumMemoryTokens ?? 0;
        if (x.dtype != ScalarType.Int64 && x.dtype != ScalarType.Int32) throw new ArgumentException($"token ids must be integers, got {x.dtype}");
        if (mask is not null && (mask.shape[0] != b || mask.shape[1] != n))
            throw new ArgumentException($"mask shape [{string.Join(", ", mask.shape)}] does not match the tokens [{b}, {n}]");

        // Embeddings: tokens + absolute positions (offset by what a cache has already seen).
        long offset = cache?.TokenLength ?? 0;
        var h = _tokenEmbedding?.Forward(x) ?? _tokenEmb.forward(x);
        if (_posEmb is not null) h = h + _posEmb.Forward(n, offset, x.device).to_type(h.dtype);
        h = _embDropout.forward(h);
        if (_projectEmb is not null) h = _projectEmb.forward(h);

        // Memory tokens are prepended once: on a full forward, or on a cache's first call.
        bool addMemTokens = numMem > 0 && (cache is null || cache.Length == 0);
        if (addMemTokens)
        {
            h = cat(new[] { get_parameter("memory_tokens")!.unsqueeze(0).expand(b, -1, -1), h }, 1);
            if (mask is not null) mask = cat(new[] { ones(b, numMem, dtype: ScalarType.Bool, device: x.device), mask.to_type(ScalarType.Bool) }, 1);
        }

        // Enhanced recurrence (Ding et al. 2021): each layer reads the memory of a higher layer.
        if (Config.ShiftMemDown > 0 && mems is not null)
        {
            int s = Config.ShiftMemDown % mems.Count;
            mems = mems.Skip(s).Concat(mems.Take(s)).ToList();
        }

        var (y, inter) = AttnLayers.Forward(h, context, mask?.to_type(ScalarType.Bool), contextMask?.to_type(ScalarType.Bool),
            attnMask, mems, cache, returnAttn);
        if (cache is not null) cache.TokenLength += n;
        if (_norm is not null) y = _norm.forward(y);

        if (addMemTokens) y = y.narrow(1, numMem, y.shape[1] - numMem);
        var output = returnEmbeddings || Config.ReturnOnlyEmbed ? y : Logits(y);

        IReadOnlyList<Tensor>? newMems = null;
        if (returnMems)
        {
            newMems = inter.Hiddens.Select((hid, i) =>
            {
                var full = mems is not null ? cat(new[] { mems[i], hid }, 1) : hid;
                // 1.40 slices t[..., -max_mem_len:, :], which keeps everything when max_mem_len is 0.
                long keep = Config.MaxMemLen == 0 && Config.Version == XTransformersVersion.V1_40 ? full.shape[1] : Math.Min(Config.MaxMemLen, full.shape[1]);
                return full.narrow(1, full.shape[1] - keep, keep).detach();
            }).ToList();
        }
        var maps = returnAttn ? inter.Attention.Select(a => a.PostSoftmaxAttn!).ToList() : null;
        return new WrapperOutput(output, newMems, maps);
    }

    Tensor Logits(Tensor y) => _toLogits is not null ? _toLogits.forward(y) : matmul(y, _tokenEmb.weight!.t());
}
