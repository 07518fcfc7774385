using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Modules;
using TransformerForge.Modules.TokenMixers;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>
/// A Transformer++ language model (Archai's tfpp <c>LanguageModel</c>: <c>CodeGenForCausalLM</c> or
/// <c>GPT2LMHeadModel</c> over mixed token-mixer layers): the stack (<c>transformer.*</c>, see
/// <see cref="TransformerPlusPlusStack"/>) and the logits (<c>lm_head</c>; with a bias in the CodeGen layout, without
/// in GPT-2's). Parameter names are Archai's (its Hugging Face model's <c>state_dict</c>), so Archai weights saved as
/// safetensors load directly. Weights start as Hugging Face initialises them: Linear and Embedding weights N(0, 0.02),
/// biases 0; GPT-2's feed-forward output projections N(0, 0.02 / √(2 · depth)).
/// As an <see cref="ILanguageModel"/>, its decoding state (<see cref="TransformerPlusPlusState"/>) holds every mixer's cache.
/// </summary>
public sealed class TransformerPlusPlus : LanguageModel
{
    const double InitStd = 0.02;
    readonly TransformerPlusPlusStack _transformer;
    readonly Linear _lmHead;

    public TransformerPlusPlus(TransformerPlusPlusConfig config) : base(nameof(TransformerPlusPlus))
    {
        config.Validate();
        Config = config;
        register_module("transformer", _transformer = new TransformerPlusPlusStack(config));
        register_module("lm_head", _lmHead = nn.Linear(config.Dim, config.NumTokens, hasBias: config.Block == TransformerPlusPlusConfig.CodeGen));
        Initialize();
    }

    public TransformerPlusPlusConfig Config { get; }
    public override int NumTokens => Config.NumTokens;
    public override int MaxSeqLen => Config.MaxSeqLen;
    public TransformerPlusPlusStack Transformer => _transformer;

    /// <summary>
    /// Logits for <paramref name="tokens"/> [b, n]; with a <paramref name="state"/>, the tokens continue what it has seen.
    /// Transformer++ takes no padding: a <paramref name="mask"/> must mark every token real.
    /// </summary>
    public override Tensor Logits(Tensor tokens, Tensor? mask = null, IDecodingState? state = null)
    {
        if (mask is not null && !mask.to_type(ScalarType.Bool).all().item<bool>())
            throw new ArgumentException("Transformer++ models take no padding mask (its convolutions would read the padding); give prompts of one length");
        var cache = state switch
        {
            null => null,
            TransformerPlusPlusState s => s,
            _ => throw new ArgumentException($"a Transformer++ model cannot decode with a {state.GetType().Name}", nameof(state)),
        };
        return _lmHead.forward(_transformer.Forward(tokens, cache));
    }

    public override IDecodingState? CreateDecodingState() => new TransformerPlusPlusState(_transformer.Blocks.Select(b => b.Attention.NewState()));

    void Initialize()
    {
        using var _ = no_grad();
        foreach (var module in modules())
        {
            switch (module)
            {
                case Linear linear:
                    nn.init.normal_(linear.weight!, 0, InitStd);
                    if (linear.bias is { } bias) nn.init.zeros_(bias);
                    break;
                case Embedding embedding:
                    nn.init.normal_(embedding.weight!, 0, InitStd);
                    break;
            }
        }
        foreach (var block in _transformer.Blocks.OfType<Gpt2Block>())
            nn.init.normal_(block.OutputProjection.weight!, 0, InitStd / Math.Sqrt(2.0 * Config.Depth));
    }
}

/// <summary>
/// The body of a Transformer++ model (Archai's <c>CodeGenModel</c> / <c>GPT2Model</c>): token embedding <c>wte</c>
/// (plus learned positions <c>wpe</c> in the GPT-2 layout), dropout, the layers <c>h.{i}</c>, the final norm <c>ln_f</c>.
/// </summary>
public sealed class TransformerPlusPlusStack : ForgeModule
{
    readonly Embedding _wte;
    readonly Embedding? _wpe;
    readonly Dropout _embedDropout;
    readonly ModuleList<MixerBlock> _h;
    readonly LayerNorm _lnF;

    public TransformerPlusPlusStack(TransformerPlusPlusConfig c) : base(nameof(TransformerPlusPlusStack))
    {
        Config = c;
        bool gpt2 = c.Block == TransformerPlusPlusConfig.Gpt2;
        register_module("wte", _wte = nn.Embedding(c.NumTokens, c.Dim));
        if (gpt2) register_module("wpe", _wpe = nn.Embedding(c.MaxSeqLen, c.Dim));
        // GPT-2 drops the embeddings inside its first block; CodeGen right here.
        register_module("embed_dropout", _embedDropout = nn.Dropout(gpt2 ? 0 : c.EmbDropout));
        var blocks = new List<MixerBlock>();
        for (int i = 0; i < c.Depth; i++)
        {
            var layer = c.Layers[i];
            var attn = MixedAttentionBlock.Create(layer.Mixers.Select(m => (m.Op, m.Heads)).ToList(), c.MixerOptions(i));
            blocks.Add(gpt2
                ? new Gpt2Block(c.Dim, attn, layer.FfInnerDim, i == 0 ? c.EmbDropout : c.ResidDropout, c.ResidDropout, c.LayerNormEps)
                : new CodeGenBlock(c.Dim, attn, layer.FfInnerDim, c.ResidDropout));
        }
        register_module("h", _h = nn.ModuleList(blocks.ToArray()));
        register_module("ln_f", _lnF = nn.LayerNorm(c.Dim, eps: c.LayerNormEps));
    }

    public TransformerPlusPlusConfig Config { get; }
    public IReadOnlyList<MixerBlock> Blocks => _h.ToList();

    /// <summary>Final hidden states [b, n, dim] for token ids [b, n] (the positions after those <paramref name="state"/> has seen).</summary>
    public Tensor Forward(Tensor tokens, TransformerPlusPlusState? state = null)
    {
        if (tokens.dtype != ScalarType.Int64 && tokens.dtype != ScalarType.Int32) throw new ArgumentException($"token ids must be integers, got {tokens.dtype}");
        if (tokens.dim() != 2) throw new ArgumentException($"tokens must be [batch, length], got [{string.Join(", ", tokens.shape)}]");
        long offset = state?.Length ?? 0, n = tokens.shape[1];
        if (offset + n > Config.MaxSeqLen)
            throw new ArgumentException($"{offset + n} positions exceed the model's max_seq_len {Config.MaxSeqLen}");

        var hidden = _wte.forward(tokens);
        if (_wpe is not null) hidden = hidden + _wpe.forward(arange(offset, offset + n, device: tokens.device)).unsqueeze(0);
        hidden = _embedDropout.forward(hidden);

        Tensor? residual = null;
        for (int i = 0; i < _h.Count; i++) (hidden, residual) = _h[i].Forward(hidden, residual, state?.Layers[i]);
        state?.Advance(n);
        return _lnF.forward(hidden);
    }
}
