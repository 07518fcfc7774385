using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// One pre-norm layer of the Feedback Transformer for one step: attention over the memory (skipped at the first step,
/// when the memory is empty), then a position-wise feed-forward network, each added back to the residual.
/// Parameters: <c>attn</c> (<see cref="FeedbackAttention"/>), <c>feed_forward</c>
/// (<see cref="PositionwiseFeedForward"/>), <c>norm_self_attn</c>, <c>norm_ff</c> (LayerNorm).
/// </summary>
public sealed class FeedbackLayer : nn.Module<Tensor, Tensor?, Tensor?, Tensor>
{
    [ComponentName(Name = "attn")] private readonly FeedbackAttention _attention;
    [ComponentName(Name = "feed_forward")] private readonly PositionwiseFeedForward _feedForward;
    [ComponentName(Name = "norm_self_attn")] private readonly LayerNorm _attentionNorm;
    [ComponentName(Name = "norm_ff")] private readonly LayerNorm _feedForwardNorm;
    [ComponentName(Name = "dropout")] private readonly Dropout _dropout;

    public FeedbackLayer(int dModel, int heads, int dFf, bool projectsKeyValues, double dropout = 0.0, int maxMemory = 4096)
        : base(nameof(FeedbackLayer))
    {
        _attention = new FeedbackAttention(dModel, heads, projectsKeyValues, dropout, maxMemory);
        _feedForward = new PositionwiseFeedForward(dModel, dFf, dropout);
        _attentionNorm = nn.LayerNorm(dModel);
        _feedForwardNorm = nn.LayerNorm(dModel);
        _dropout = nn.Dropout(dropout);
        RegisterComponents();
    }

    public FeedbackAttention Attention => _attention;

    /// <summary>
    /// <paramref name="x"/> <c>[batch, dModel]</c>; <paramref name="keys"/>, <paramref name="values"/>
    /// <c>[memory, batch, heads, d_k]</c>, or null when there is no memory yet.
    /// </summary>
    public override Tensor forward(Tensor x, Tensor? keys, Tensor? values)
    {
        if (keys is not null)
        {
            var attended = _attention.forward(_attentionNorm.forward(x), keys, values ?? throw new ArgumentNullException(nameof(values)));
            x = x + _dropout.forward(attended);
        }
        var transformed = _feedForward.forward(_feedForwardNorm.forward(x));
        return x + _dropout.forward(transformed);
    }
}
