using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// A Transformer++ layer: a <see cref="MixedAttentionBlock"/> (<c>attn</c>) and a GELU feed-forward (<c>mlp</c>) with
/// LayerNorms and residual adds, in one of Archai's two layouts (<see cref="CodeGenBlock"/>, <see cref="Gpt2Block"/>).
/// <see cref="Forward"/> threads a hidden state and (GPT-2 layout) a separate residual stream from layer to layer.
/// </summary>
public abstract class MixerBlock : ForgeModule
{
    protected MixerBlock(string name) : base(name) { }

    public abstract MixedAttentionBlock Attention { get; }

    /// <summary>The layer on <paramref name="hidden"/> (and <paramref name="residual"/>); <paramref name="state"/>: the mixers' decoding state.</summary>
    public abstract (Tensor Hidden, Tensor? Residual) Forward(Tensor hidden, Tensor? residual, IReadOnlyList<TokenMixerState>? state);
}

/// <summary>
/// Archai's <c>CodeGenBlock</c> (the GPT-J / CodeGen parallel layout, Wang &amp; Komatsuzaki 2021): one LayerNorm feeds
/// both the mixers and the feed-forward, and x + dropout(attn(n)) + dropout(mlp(n)) comes out.
/// Names: <c>norm</c>, <c>attn.*</c>, <c>mlp.fc1</c>, <c>mlp.fc2</c>.
/// </summary>
public sealed class CodeGenBlock : MixerBlock
{
    readonly LayerNorm _norm;
    readonly MixedAttentionBlock _attn;
    readonly GeluMlp _mlp;
    readonly Dropout _residDropout;

    public CodeGenBlock(int dim, MixedAttentionBlock attn, int ffInnerDim, double residDropout) : base(nameof(CodeGenBlock))
    {
        // Archai's block norm takes PyTorch's default ε (1e-5), not the config's.
        register_module("norm", _norm = nn.LayerNorm(dim));
        register_module("attn", _attn = attn);
        register_module("mlp", _mlp = new GeluMlp(dim, ffInnerDim, "fc1", "fc2"));
        register_module("resid_dropout", _residDropout = nn.Dropout(residDropout));
    }

    public override MixedAttentionBlock Attention => _attn;

    public override (Tensor Hidden, Tensor? Residual) Forward(Tensor hidden, Tensor? residual, IReadOnlyList<TokenMixerState>? state)
    {
        var normed = _norm.forward(hidden);
        var mixed = _residDropout.forward(_attn.Forward(normed, state));
        var fed = _residDropout.forward(_mlp.forward(normed));
        return (hidden + mixed + fed, null);
    }
}

/// <summary>
/// Archai's <c>GPT2Block</c> (flash-attention's pre-norm layout with the residual carried separately): the residual
/// absorbs the previous layer's output, ln1 → mixers, the residual absorbs them, ln2 → feed-forward, whose output is
/// handed on. As in Archai, the last layer's feed-forward output goes to the final norm without a last residual add.
/// Names: <c>ln1</c>, <c>attn.*</c>, <c>ln2</c>, <c>mlp.c_fc</c>, <c>mlp.c_proj</c>.
/// </summary>
public sealed class Gpt2Block : MixerBlock
{
    readonly LayerNorm _ln1, _ln2;
    readonly MixedAttentionBlock _attn;
    readonly GeluMlp _mlp;
    readonly Dropout _dropout1, _dropout2;

    /// <param name="inputDropout">Dropout of what enters the residual: the embeddings' dropout for the first layer.</param>
    public Gpt2Block(int dim, MixedAttentionBlock attn, int ffInnerDim, double inputDropout, double residDropout, double eps) : base(nameof(Gpt2Block))
    {
        register_module("ln1", _ln1 = nn.LayerNorm(dim, eps: eps));
        register_module("ln2", _ln2 = nn.LayerNorm(dim, eps: eps));
        register_module("attn", _attn = attn);
        register_module("mlp", _mlp = new GeluMlp(dim, ffInnerDim, "c_fc", "c_proj"));
        register_module("resid_dropout1", _dropout1 = nn.Dropout(inputDropout));
        register_module("resid_dropout2", _dropout2 = nn.Dropout(residDropout));
    }

    public override MixedAttentionBlock Attention => _attn;

    /// <summary>The feed-forward's output projection (<c>c_proj</c>), which GPT-2 initialises scaled by depth.</summary>
    public Linear OutputProjection => _mlp.Output;

    public override (Tensor Hidden, Tensor? Residual) Forward(Tensor hidden, Tensor? residual, IReadOnlyList<TokenMixerState>? state)
    {
        var dropped = _dropout1.forward(hidden);
        residual = residual is null ? dropped : dropped + residual;
        var mixed = _attn.Forward(_ln1.forward(residual), state);
        residual = _dropout2.forward(mixed) + residual;
        return (_mlp.forward(_ln2.forward(residual)), residual);
    }
}

/// <summary>Linear → GELU (exact) → Linear, with the two layers' names given (CodeGen: fc1/fc2, GPT-2: c_fc/c_proj).</summary>
public sealed class GeluMlp : ForgeModule<Tensor, Tensor>
{
    readonly Linear _in, _out;

    public GeluMlp(int dim, int innerDim, string inName, string outName) : base(nameof(GeluMlp))
    {
        register_module(inName, _in = nn.Linear(dim, innerDim));
        register_module(outName, _out = nn.Linear(innerDim, dim));
    }

    public Linear Output => _out;

    public override Tensor forward(Tensor x) => _out.forward(nn.functional.gelu(_in.forward(x)));
}
