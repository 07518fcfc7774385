using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Config;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// One residual layer as x-transformers stores it: <c>0</c> norm(s), <c>1</c> block, <c>2</c> residual join. 0.20 keeps
/// one norm at <c>0</c> (pre- or post-norm; with sandwich norm a list of two); 1.40 keeps three slots
/// <c>0.0</c> pre-branch, <c>0.1</c> post-branch (sandwich), <c>0.2</c> post-main (post-norm, ResiDual), absent ones left out.
/// </summary>
public sealed class ResidualLayer : ForgeModule
{
    public char Kind { get; }
    /// <summary>Norm of the branch input (pre-norm).</summary>
    public nn.Module<Tensor, Tensor>? PreNorm { get; }
    /// <summary>Sandwich norm (Ding et al. 2021, CogView): a second norm on the branch output.</summary>
    public nn.Module<Tensor, Tensor>? PostBranchNorm { get; }
    /// <summary>Norm after the residual join (post-norm).</summary>
    public nn.Module<Tensor, Tensor>? PostMainNorm { get; }
    public Block Block { get; }
    public ResidualJoin Join { get; }

    public ResidualLayer(char kind, nn.Module<Tensor, Tensor>? preNorm, nn.Module<Tensor, Tensor>? postBranchNorm,
        nn.Module<Tensor, Tensor>? postMainNorm, Block block, ResidualJoin join, bool v140) : base(nameof(ResidualLayer))
    {
        Kind = kind; PreNorm = preNorm; PostBranchNorm = postBranchNorm; PostMainNorm = postMainNorm; Block = block; Join = join;
        if (v140)
            register_module("0", new ModuleSlots(preNorm, postBranchNorm, postMainNorm));
        else
        {
            var norm = preNorm ?? postMainNorm ?? throw new ArgumentException("a 0.20 layer has one norm, pre or post");
            register_module("0", postBranchNorm is null ? norm : nn.ModuleList(norm, postBranchNorm));
        }
        register_module("1", block);
        register_module("2", join);
    }
}

/// <summary>What a layer stack returns besides its output.</summary>
public sealed record LayerIntermediates(IReadOnlyList<Tensor> Hiddens, IReadOnlyList<BlockOutput> Attention);

/// <summary>
/// The layer stack (x-transformers' <c>AttentionLayers</c>): self-attention 'a', cross-attention 'c' and feed-forward 'f'
/// layers in the configured order, pre- or post-norm, with the positional scheme shared by all self-attention layers.
/// Under 1.40 it also normalises its own output (<c>final_norm</c>) and runs ResiDual's second residual stream, U-Net
/// skips, value residuals, weight-tied layers and the soft-capped output.
/// </summary>
public sealed class AttentionLayers : ForgeModule
{
    public AttentionLayersConfig Config { get; }
    public int Dim => Config.Dim;
    /// <summary>The layers that own weights (one block when weight-tied).</summary>
    public IReadOnlyList<char> LayerTypes { get; }
    /// <summary>Which layer runs at each step (each once, or the tied block <c>depth</c> times).</summary>
    public IReadOnlyList<int> ExecutionOrder { get; }
    /// <summary>Self-attention layers as run: one Transformer-XL memory each.</summary>
    public int NumAttnLayers => ExecutionOrder.Count(i => LayerTypes[i] == 'a');

    readonly List<ResidualLayer> _layers = new();
    readonly FixedPositionalEmbedding? _pia;
    readonly RotaryEmbedding? _rotary;
    readonly RelativePositionBias? _t5;
    readonly AlibiPositionalBias? _alibi;
    readonly DynamicPositionBias? _dynamic;
    readonly Dictionary<int, (ConcatCombine Combine, int Source)> _skips = new();
    readonly nn.Module<Tensor, Tensor>? _finalNorm;

    public AttentionLayers(AttentionLayersConfig c) : base(nameof(AttentionLayers))
    {
        c.Validate();
        Config = c;
        LayerTypes = c.LayerTypes();
        ExecutionOrder = c.ExecutionOrder();
        bool causal = c.IsCausal, v140 = c.IsV140;

        // Positional schemes that live inside attention, registered under x-transformers' names.
        if (c.PositionInfusedAttn) register_module("pia_pos_emb", _pia = new FixedPositionalEmbedding(c.Dim));
        if (c.UsesRotary)
            register_module("rotary_pos_emb", _rotary = new RotaryEmbedding(c.RotaryLength, interleaved: v140, xpos: c.RotaryXpos, scaleBase: c.RotaryXposScaleBase));
        if (c.RelPosBias)
            register_module("rel_pos", _t5 = new RelativePositionBias(Math.Pow(c.Attn.DimHead, 0.5), causal, c.RelPosNumBuckets, c.RelPosMaxDistance, c.Heads));
        else if (c.DynamicPosBias)
            register_module("rel_pos", _dynamic = new DynamicPositionBias(c.Dim / 4, c.Heads, c.DynamicPosBiasMlpDepth, c.DynamicPosBiasLogDistance, c.DynamicPosBiasNorm));
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
            if (c.UseLayerscale) block = new LayerScale(block, c.Dim, c.LayerscaleInitValue, c.NormAddUnitOffset);

            ResidualJoin join = c.GateResidual ? new GRUGating(c.Dim, c.ScaleResidual) : new Residual(c.Dim, c.ScaleResidual);
            var (pre, postBranch, postMain) = LayerNorms(c);
            var layer = new ResidualLayer(LayerTypes[i], pre, postBranch, postMain, block, join, v140);
            _layers.Add(layer);
            list.Add(layer);
        }
        register_module("layers", list);

        var skipSources = c.UnetSkipSources();
        if (skipSources.Count > 0)
        {
            var combines = new ConcatCombine?[LayerTypes.Count];
            foreach (var (layer, source) in skipSources) _skips[layer] = (combines[layer] = new ConcatCombine(c.Dim), source);
            register_module("skip_combines", new ModuleSlots(combines));
        }
        if (c.HasFinalNorm) register_module("final_norm", _finalNorm = NewNorm(c));
    }

    static Block FeedForwardBlock(AttentionLayersConfig c)
    {
        Block ff = new FeedForward(c.Dim, c.FeedForward, zeroInitOutput: c.ZeroInitBranchOutput);
        return c.Macaron ? new Scale(0.5, ff) : ff;
    }

    /// <summary>A layer's norms: pre-branch (pre-norm), post-branch (sandwich) and post-main (post-norm, ResiDual).</summary>
    static (nn.Module<Tensor, Tensor>? Pre, nn.Module<Tensor, Tensor>? PostBranch, nn.Module<Tensor, Tensor>? PostMain) LayerNorms(AttentionLayersConfig c)
    {
        var postBranch = c.SandwichNorm ? NewNorm(c) : null;
        return c.UsesPreNorm ? (NewNorm(c), postBranch, null) : (null, postBranch, NewNorm(c));
    }

    /// <summary>
    /// The configured norm. 0.20: torch's LayerNorm (weight and bias), RMSNorm or ScaleNorm (gain <c>g</c>), or none
    /// under ReZero. 1.40: bias-less LayerNorm (<c>gamma</c>), RMSNorm, ScaleNorm or SimpleRMSNorm, gains stored as offsets
    /// from 1 by default (<c>norm_add_unit_offset</c>), and ‖x‖ bounded at 1e-12 as torch's normalize does.
    /// </summary>
    static nn.Module<Tensor, Tensor> NewNorm(AttentionLayersConfig c)
    {
        if (!c.IsV140)
            return c.UseRezero ? nn.Identity()
                : c.UseRmsnorm ? new RMSNorm(c.Dim)
                : c.UseScalenorm ? new ScaleNorm(c.Dim)
                : nn.LayerNorm(c.Dim);
        double eps = 1e-12 / Math.Sqrt(c.Dim);
        bool offset = c.NormAddUnitOffset;
        return c.UseRmsnorm ? new RMSNorm(c.Dim, eps, offset)
            : c.UseSimpleRmsnorm ? new RMSNorm(c.Dim, eps, gain: false)
            : c.UseScalenorm ? new ScaleNorm(c.Dim, eps, offset)
            : new BiaslessLayerNorm(c.Dim, offset);
    }

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
        if (cache is not null && cache.Layers.Count != ExecutionOrder.Count) cache.Init(ExecutionOrder.Count);

        long n = x.shape[1];
        long cached = cache?.Length ?? 0;
        bool firstCall = cached == 0;
        var layerMems = mems is not null && firstCall ? mems : null;
        long memLen = layerMems?.Max(m => m?.shape[1] ?? 0) ?? 0;

        // Key-side mask: cached positions and memories come before the new ones (memories are always visible).
        Tensor? keyMask = cache is not null ? cache.AppendMask(mask, x.shape[0], n, memLen, x.device)
            : mask is not null && memLen > 0 ? cat(new[] { ones(x.shape[0], memLen, dtype: ScalarType.Bool, device: x.device), mask }, 1)
            : null;

        long keyLength = (cache?.KeyLength ?? 0) + memLen + n;
        var positions = new PositionInputs
        {
            Pia = _pia, T5 = _t5, Alibi = _alibi, Dynamic = _dynamic,
            RotaryFreqs = _rotary?.Forward(keyLength),
            XposScale = _rotary?.XposScale(keyLength, XposCenter(cache, memLen, n)),
            QueryStart = cache is null ? 0 : cached,
        };

        var hiddens = new List<Tensor>();
        var attention = new List<BlockOutput>();
        Tensor? prevAttn = null, prevCrossAttn = null;
        Tensor? firstSelfValues = null, firstCrossValues = null;
        int attnIndex = 0;
        bool needAttn = returnAttention || Config.ResidualAttn || Config.CrossResidualAttn;
        bool v140 = Config.IsV140, valueResidual = Config.AddValueResidual;
        // ResiDual (Xie et al. 2023): a second residual stream of the un-normalised branch outputs.
        var outerResidual = Config.ResiDual ? x * Config.ResiDualScale : null;
        var skipHiddens = _skips.Count > 0 ? new List<Tensor>() : null;

        for (int step = 0; step < ExecutionOrder.Count; step++)
        {
            var layer = _layers[ExecutionOrder[step]];
            bool isLast = step == ExecutionOrder.Count - 1;

            // U-Net skips: the input of the mirror layer in the first half joins this one's.
            skipHiddens?.Add(x);
            if (_skips.TryGetValue(ExecutionOrder[step], out var skip)) x = skip.Combine.Forward(x, skipHiddens![skip.Source]);

            Tensor? layerMem = null;
            if (layer.Kind == 'a')
            {
                hiddens.Add(x);
                layerMem = layerMems?[attnIndex];
                attnIndex++;
            }

            var residual = x;
            if (layer.PreNorm is { } preNorm)
            {
                x = preNorm.forward(x);
                // 1.40 normalises a layer's Transformer-XL memory as it does the layer's input.
                if (v140 && layerMem is not null) layerMem = preNorm.forward(layerMem);
            }

            var inputs = layer.Kind switch
            {
                'a' => new BlockInputs
                {
                    Mask = mask, KeyMask = keyMask, AttnMask = attnMask, Positions = positions, PrevAttn = prevAttn,
                    Mem = layerMem, Cache = cache?.Layers[step], NeedAttention = needAttn,
                    ValueResidual = valueResidual ? firstSelfValues : null, NeedValues = valueResidual && firstSelfValues is null,
                },
                'c' => new BlockInputs
                {
                    Context = context, Mask = mask, ContextMask = contextMask, PrevAttn = prevCrossAttn,
                    Cache = cache?.Layers[step], NeedAttention = needAttn,
                    ValueResidual = valueResidual ? firstCrossValues : null, NeedValues = valueResidual && firstCrossValues is null,
                },
                _ => new BlockInputs { Cache = cache?.Layers[step] },
            };
            var result = layer.Block.Forward(x, inputs);
            if (layer.Kind == 'a') firstSelfValues ??= result.Values;
            else if (layer.Kind == 'c') firstCrossValues ??= result.Values;

            var output = result.Output;
            if (outerResidual is not null) outerResidual = outerResidual + output * Config.ResiDualScale;
            if (layer.PostBranchNorm is not null) output = layer.PostBranchNorm.forward(output);
            x = layer.Join.Forward(output, residual);

            if (layer.Kind != 'f') attention.Add(result);
            if (layer.Kind == 'a' && Config.ResidualAttn) prevAttn = result.PreSoftmaxAttn;
            else if (layer.Kind == 'c' && Config.CrossResidualAttn) prevCrossAttn = result.PreSoftmaxAttn;

            // Post-norm: 0.20 leaves the last layer to the wrapper's norm; 1.40 normalises every layer.
            if (layer.PostMainNorm is { } postNorm && (v140 || !isLast)) x = postNorm.forward(x);
        }

        if (Config.SoftclampOutput) x = (x / Config.SoftclampOutputValue).tanh() * Config.SoftclampOutputValue;
        if (_finalNorm is not null) x = outerResidual is not null ? x + _finalNorm.forward(outerResidual) : _finalNorm.forward(x);

        cache?.Advance(n, memLen);
        return (x, new LayerIntermediates(hiddens, attention));
    }

    /// <summary>
    /// The xPos centre, in positions counted from the first key: x-transformers centres each call at half its length
    /// (memories count as negative positions). A cache keeps the centre of its first call: the centre cancels in every
    /// query-key product, but a key cached with one centre must meet queries scaled with the same one.
    /// </summary>
    long XposCenter(DecodingCache? cache, long memLen, long n)
    {
        if (_rotary is not { UsesXpos: true }) return 0;
        if (cache is null) return memLen + n / 2;
        cache.XposCenter ??= cache.KeyLength + memLen + n / 2;
        return cache.XposCenter.Value;
    }
}
