using TorchSharp;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Generation;

/// <summary>Turns next-token logits [b, V] into token ids [b, 1] according to <see cref="SamplingOptions"/>.</summary>
public static class Sampler
{
    public static Tensor Sample(Tensor logits, SamplingOptions o, torch.Generator? rng = null)
    {
        using var scope = NewDisposeScope();
        if (o.Greedy) return logits.argmax(-1, keepdim: true).MoveToOuterDisposeScope();
        var filtered = logits.to_type(ScalarType.Float32);
        if (o.TopK is { } k) filtered = TopK(filtered, k);
        if (o.TopP is { } p) filtered = TopP(filtered, p);
        var scaled = filtered / o.Temperature;
        var probs = o.EntmaxAlpha is { } alpha ? EntmaxBisect.Apply(scaled, alpha) : scaled.softmax(-1);
        // A seeded generator lives on the CPU: draw there ([b, V] is small) and move the ids back.
        var draw = rng is null ? multinomial(probs, 1) : multinomial(probs.cpu(), 1, generator: rng).to(logits.device);
        return draw.MoveToOuterDisposeScope();
    }

    /// <summary>Keeps the k largest logits, sets the rest to -inf.</summary>
    public static Tensor TopK(Tensor logits, int k)
    {
        k = (int)Math.Min(k, logits.shape[^1]);
        var (values, _) = logits.topk(k, -1);
        var threshold = values.narrow(-1, k - 1, 1);
        return logits.masked_fill(logits.lt(threshold), double.NegativeInfinity);
    }

    /// <summary>Keeps the smallest set of most likely tokens whose probability reaches p (always at least one).</summary>
    public static Tensor TopP(Tensor logits, double p)
    {
        var (sorted, indices) = logits.sort(-1, descending: true);
        var cumulative = sorted.softmax(-1).cumsum(-1);
        // Remove a token when the mass before it already reaches p.
        var remove = (cumulative - sorted.softmax(-1)).ge(p);
        sorted = sorted.masked_fill(remove, double.NegativeInfinity);
        return logits.scatter(-1, indices, sorted);
    }
}
