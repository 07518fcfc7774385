using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>What a layer stack hands every block: masks, context, positions, the previous layer's attention and caches.</summary>
public sealed record BlockInputs
{
    /// <summary>Query-side padding mask [b, n] over the new positions (true = keep).</summary>
    public Tensor? Mask { get; init; }
    /// <summary>Key-side padding mask [b, keys] for self-attention when keys outnumber queries (cache, memories).</summary>
    public Tensor? KeyMask { get; init; }
    public Tensor? Context { get; init; }
    public Tensor? ContextMask { get; init; }
    /// <summary>Explicit attention mask [i, j], [h, i, j] or [b, h, i, j] (true = may attend).</summary>
    public Tensor? AttnMask { get; init; }
    /// <summary>Transformer-XL memory for this layer: hidden states prepended to keys and values.</summary>
    public Tensor? Mem { get; init; }
    /// <summary>Pre-softmax scores of the previous attention layer (residual attention, He et al. 2020).</summary>
    public Tensor? PrevAttn { get; init; }
    public PositionInputs? Positions { get; init; }
    /// <summary>This layer's incremental-decoding state, or null for a full forward.</summary>
    public LayerCache? Cache { get; init; }
    /// <summary>Whether the caller needs the attention maps (residual attention, return_attn).</summary>
    public bool NeedAttention { get; init; }
    /// <summary>Value residual (ResFormer): the first attention layer's values [b, kv_heads, keys, d], added to this layer's.</summary>
    public Tensor? ValueResidual { get; init; }
    /// <summary>Whether the caller needs this attention block's values (the first layer, for value residuals).</summary>
    public bool NeedValues { get; init; }
}

/// <summary>Positional information shared by the self-attention blocks of one stack.</summary>
public sealed record PositionInputs
{
    public FixedPositionalEmbedding? Pia { get; init; }
    public RelativePositionBias? T5 { get; init; }
    public AlibiPositionalBias? Alibi { get; init; }
    /// <summary>Rotary angles [1, 1, L, l] for positions 0..L-1 of the longest key sequence.</summary>
    public Tensor? RotaryFreqs { get; init; }
    /// <summary>xPos query scales [1, 1, L, l] for the same positions (keys use the inverse), or null.</summary>
    public Tensor? XposScale { get; init; }
    /// <summary>Dynamic position bias (1.40): the MLP from distances to per-head biases.</summary>
    public DynamicPositionBias? Dynamic { get; init; }
    /// <summary>Position of the first query for T5 buckets (0 in a full forward, as x-transformers 0.20 does even with memories).</summary>
    public long QueryStart { get; init; }
}

/// <summary>
/// A block's result; attention maps are present for attention blocks when asked for, and an attention block's values
/// [b, kv_heads, keys, d] (1.40's value residual takes the first layer's).
/// </summary>
public readonly record struct BlockOutput(Tensor Output, Tensor? PreSoftmaxAttn = null, Tensor? PostSoftmaxAttn = null, Tensor? Values = null)
{
    public BlockOutput Map(Func<Tensor, Tensor> f) => this with { Output = f(Output) };
}

/// <summary>A residual branch: attention, cross-attention or feed-forward, possibly wrapped (shift, scale, ReZero).</summary>
public abstract class Block(string name) : ForgeModule(name)
{
    public abstract BlockOutput Forward(Tensor x, BlockInputs inputs);
}
