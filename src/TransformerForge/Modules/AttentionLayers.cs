using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Config;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>One residual layer as x-transformers stores it: <c>0</c> norm(s), <c>1</c> block, <c>2</c> residual join.</summary>
public sealed class ResidualLayer : ForgeModule
{
    public char Kind { get; }
    public nn.Module<Tensor, Tensor> Norm { get; }
    /// <summary>Sandwich norm (Ding et al. 2021, CogView): a second norm on the branch output.</summary>
    public nn.Module<Tensor, Tensor>? PostNorm { get; }
    public Block Block { get; }
    public ResidualJoin Join { get; }

    public ResidualLayer(char kind, nn.Module<Tensor, Tensor> norm, nn.Module<Tensor, Tensor>? postNorm, Block block, ResidualJoin join)
        : base(nameof(ResidualLayer))
    {
        Kind = kind; Norm = norm; PostNorm = postNorm; Block = block; Join = join;
        register_module("0", postNorm is null ? norm : nn.ModuleList(norm, postNorm));
        register_module("1", block);
        register_module("2", join);
    }
}

/// <summary>What a layer stack returns besides its output.</summary>
public sealed record LayerIntermediates(IReadOnlyList<Tensor> Hiddens, IReadOnlyList<BlockOutput> Attention);

/// <summary>
/// The layer stack (x-transformers' <c>AttentionLayers</c>): self-attention 'a', cross-attention 'c' and feed-forward 'f'
/// layers in the configured order, pre- or post-norm, with the positional scheme shared by all self-attention layers.
/// </summary>
public sealed class AttentionLayers : ForgeModule
{
    public AttentionLayersConfig Config { get; }
    public int Dim => Config.Dim;
    public IReadOnlyList<char> LayerTypes { get; }
    public int NumAttnLayers => LayerTypes.Count(t => t == 'a');

    readonly List<ResidualLayer> _layers = new();
    readonly FixedPositionalEmbedding? _pia;
    readonly RotaryEmbedding? _rotary;
    readonly RelativePositionBias? _t5;
    readonly AlibiPositionalBias? _alibi;

    public AttentionLayers(AttentionLayersConfig c) : base(nameof(AttentionLayers))
    {
        c.Validate();
        Config = c;
        LayerTypes = c.LayerTypes();
        bool causal = c.IsCausal;

        // Positional schemes that live inside attention, registered under x-transformers' names.
        if (c.PositionInfusedAttn) register_module("pia_pos_emb", _pia = new FixedPositionalEmbedding(c.Dim));
        if (c.RotaryPosEmb) register_module("rotary_pos_emb", _rotary = new RotaryEmbedding(c.RotaryLength));
        if (c.RelPosBias)
            register_module("rel_pos", _t5 = new RelativePositionBias(Math.Pow(c.Attn.DimHead, 0.5), causal, c.RelPosNumBuckets, c.RelPosMaxDistance, c.Heads));
        else if (c.AlibiPosBias)
            register_module("rel_pos", _alibi = new AlibiPositionalBias(c.AlibiNumHeads ?? c.Heads, c.AlibiLearned));

        var shifts = c.ShiftTokens.Count == 1 ? Enumerable.Repeat(c.ShiftTokens[0], LayerTypes.Count).ToArray() : c.ShiftTokens.ToArray();
        var list = new ModuleList<nn.Module>();
        for (int i = 0; i < LayerTypes.Count; i++)
        {
            Block block = LayerTypes[i] switch
            {
                'a' => new Attention(c.Dim, c.Heads, causal, c.SelfAttn, c.ZeroInitBranchOutput),
                'c' => new Attention(c.Dim, c.Heads, causal: false, c.CrossAttn, c.ZeroInitBranchOutput),
                'f' => FeedForwardBlock(c),
                var t => throw new ConfigException("custom_layers", $"invalid layer type '{t}'"),
            };
            if (shifts[i] > 0)
                block = new ShiftTokens(Enumerable.Range(causal ? 0 : -shifts[i], causal ? shifts[i] + 1 : 2 * shifts[i] + 1), block);
            if (c.UseRezero) block = new Rezero(block);

            ResidualJoin join = c.GateResidual ? new GRUGating(c.Dim, c.ScaleResidual) : new Residual(c.Dim, c.ScaleResidual);
            var layer = new ResidualLayer(LayerTypes[i], NewNorm(c), c.SandwichNorm ? NewNorm(c) : null, block, join);
            _layers.Add(layer);
            list.Add(layer);
        }
        register_module("layers", list);
    }

    static Block FeedForwardBlock(AttentionLayersConfig c)
    {
        Block ff = new FeedForward(c.Dim, c.FeedForward, zeroInitOutput: c.ZeroInitBranchOutput);
        return c.Macaron ? new Scale(0.5, ff) : ff;
    }

    static nn.Module<Tensor, Tensor> NewNorm(AttentionLayersConfig c) =>
        c.UseRezero ? nn.Identity()
        : c.UseRmsnorm ? new RMSNorm(c.Dim)
        : c.UseScalenorm ? new ScaleNorm(c.Dim)
        : nn.LayerNorm(c.Dim);

    /// <summary>
    /// Runs the stack. <paramref name="mems"/> holds one Transformer-XL memory per self-attention layer (or null);
    /// <paramref name="cache"/>, when given, makes the call incremental: x holds only new positions.
    /// </summary>
    public (Tensor Output, LayerIntermediates Intermediates) Forward(Tensor x, Tensor? context = null, Tensor? mask = null,
        Tensor? contextMask = null, Tensor? attnMask = null, IReadOnlyList<Tensor?>? mems = null, DecodingCache? cache = null,
        bool returnAttention = false)
    {
        if (Config.HasCrossAttention != (context is not null))
            throw new ArgumentException(Config.HasCrossAttention ? "context must be passed in when cross_attend is set" : "context given but cross_attend is not set");
        if (mems is not null && mems.Count != NumAttnLayers)
            throw new ArgumentException($"expected {NumAttnLayers} memories (one per self-attention layer), got {mems.Count}");
        if (cache is not null && cache.Layers.Count != _layers.Count) cache.Init(_layers.Count);

        long n = x.shape[1];
        long cached = cache?.Length ?? 0;
        bool firstCall = cached == 0;
        var layerMems = mems is not null && firstCall ? mems : null;
        long memLen = layerMems?.Max(m => m?.shape[1] ?? 0) ?? 0;

        // Key-side mask: cached positions and memories come before the new ones (memories are always visible).
        Tensor? keyMask = cache is not null ? cache.AppendMask(mask, x.shape[0], n, memLen, x.device)
            : mask is not null && memLen > 0 ? cat(new[] { ones(x.shape[0], memLen, dtype: ScalarType.Bool, device: x.device), mask }, 1)
            : null;

        var positions = new PositionInputs
        {
            Pia = _pia, T5 = _t5, Alibi = _alibi,
            RotaryFreqs = _rotary?.Forward((cache?.KeyLength ?? 0) + memLen + n),
            QueryStart = cache is null ? 0 : cached,
        };

        var hiddens = new List<Tensor>();
        var attention = new List<BlockOutput>();
        Tensor? prevAttn = null, prevCrossAttn = null;
        int attnIndex = 0;
        bool needAttn = returnAttention || Config.ResidualAttn || Config.CrossResidualAttn;

        for (int li = 0; li < _layers.Count; li++)
        {
            var layer = _layers[li];
            bool isLast = li == _layers.Count - 1;
            Tensor? layerMem = null;
            if (layer.Kind == 'a')
            {
                hiddens.Add(x);
                layerMem = layerMems?[attnIndex];
                attnIndex++;
            }

            var residual = x;
            if (Config.PreNorm) x = layer.Norm.forward(x);

            var inputs = layer.Kind switch
            {
                'a' => new BlockInputs
                {
                    Mask = mask, KeyMask = keyMask, AttnMask = attnMask, Positions = positions, PrevAttn = prevAttn,
                    Mem = layerMem, Cache = cache?.Layers[li], NeedAttention = needAttn,
                },
                'c' => new BlockInputs
                {
                    Context = context, Mask = mask, ContextMask = contextMask, PrevAttn = prevCrossAttn,
                    Cache = cache?.Layers[li], NeedAttention = needAttn,
                },
                _ => new BlockInputs { Cache = cache?.Layers[li] },
            };
            var result = layer.Block.Forward(x, inputs);
            var output = result.Output;
            if (layer.PostNorm is not null) output = layer.PostNorm.forward(output);
            x = layer.Join.Forward(output, residual);

            if (layer.Kind != 'f') attention.Add(result);
            if (layer.Kind == 'a' && Config.ResidualAttn) prevAttn = result.PreSoftmaxAttn;
            else if (layer.Kind == 'c' && Config.CrossResidualAttn) prevCrossAttn = result.PreSoftmaxAttn;

            if (!Config.PreNorm && !isLast) x = layer.Norm.forward(x);
        }

        cache?.Advance(n, memLen);
        return (x, new LayerIntermediates(hiddens, attention));
    }
}
