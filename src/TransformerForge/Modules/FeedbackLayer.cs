using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// One pre-norm layer of the Feedback Transformer for one step: attention over the memory (skipped at the first step,
/// when the memory is empty), then a position-wise feed-forward network, each added back to the residual.
/// Parameters: <c>attn</c> (<see cref="FeedbackAttention"/>), <c>feed_forward</c>
/// (<see cref="PositionwiseFeedForward"/>), <c>norm_self_attn</c>, <c>norm_ff</c> (LayerNorm).
/// </summary>
public sealed class FeedbackLayer : ForgeModule
{
    private readonly FeedbackAttention _attention;
    private readonly PositionwiseFeedForward _feedForward;
    private readonly LayerNorm _attentionNorm, _feedForwardNorm;
    private readonly OptionalDropout _dropout;

    public FeedbackLayer(int dim, int heads, int ffInnerDim, bool projectsKeyValues, double dropout = 0.0, int maxMemory = 4096)
        : base(nameof(FeedbackLayer))
    {
        _attention = new FeedbackAttention(dim, heads, projectsKeyValues, dropout, maxMemory);
        _feedForward = new PositionwiseFeedForward(dim, ffInnerDim, dropout);
        _attentionNorm = nn.LayerNorm(dim);
        _feedForwardNorm = nn.LayerNorm(dim);
        _dropout = new OptionalDropout(dropout);
        register_module("attn", _attention);
        register_module("feed_forward", _feedForward);
        register_module("norm_self_attn", _attentionNorm);
        register_module("norm_ff", _feedForwardNorm);
        register_module("dropout", _dropout);
    }

    public FeedbackAttention Attention => _attention;

    /// <summary>
    /// <paramref name="x"/> <c>[batch, dim]</c>; <paramref name="keys"/>, <paramref name="values"/>
    /// <c>[memory, batch, heads, dim_head]</c>, or null when there is no memory yet; <paramref name="visible"/>
    /// <c>[memory, batch]</c> marks the entries that are not padding (null: all are).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? keys, Tensor? values, Tensor? visible = null)
    {
        if (keys is not null)
        {
            ArgumentNullException.ThrowIfNull(values);
            var attended = _attention.Forward(_attentionNorm.forward(x), keys, values, visible);
            // A sequence with nothing visible yet (only padding so far) skips attention, as every sequence does at
            // the first step.
            if (visible is not null)
                attended = where(visible.any(0).unsqueeze(1), attended, zeros_like(attended));
            x = x + _dropout.forward(attended);
        }
        var transformed = _feedForward.forward(_feedForwardNorm.forward(x));
        return x + _dropout.forward(transformed);
    }
}
