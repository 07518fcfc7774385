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
}

/// <summary>Positional information shared by the self-attention blocks of one stack.</summary>
public sealed record PositionInputs
{
    public FixedPositionalEmbedding? Pia { get; init; }
    public RelativePositionBias? T5 { get; init; }
    public AlibiPositionalBias? Alibi { get; init; }
    /// <summary>Rotary angles [1, 1, L, l] for positions 0..L-1 of the longest key sequence.</summary>
    public Tensor? RotaryFreqs { get; init; }
    /// <summary>Position of the first query for T5 buckets (0 in a full forward, as x-transformers 0.20 does even with memories).</summary>
    public long QueryStart { get; init; }
}

/// <summary>A block's result; attention maps are present for attention blocks when asked for.</summary>
public readonly record struct BlockOutput(Tensor Output, Tensor? PreSoftmaxAttn = null, Tensor? PostSoftmaxAttn = null)
{
    public BlockOutput Map(Func<Tensor, Tensor> f) => this with { Output = f(Output) };
}

/// <summary>A residual branch: attention, cross-attention or feed-forward, possibly wrapped (shift, scale, ReZero).</summary>
public abstract class Block(string name) : ForgeModule(name)
{
    public abstract BlockOutput Forward(Tensor x, BlockInputs inputs);
}
