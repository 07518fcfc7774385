using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Modules;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

/// <summary>
/// The stack-wide decoding state: the key-side padding mask kept across calls, the cross-attention context computed
/// once. Weights are perturbed as the fixtures' are.
/// </summary>
public class DecodingCacheTests
{
    static TransformerWrapper Model(Func<AttentionLayersConfig, AttentionLayersConfig> options, Func<TransformerWrapperConfig, TransformerWrapperConfig>? wrapper = null) =>
        Build.Decoder(options, wrapper, dim: 16, heads: 2, initSeed: 3);

    /// <summary>
    /// Generation from a left-padded prompt: the mask comes with the prompt only, the generated tokens come without one.
    /// The padded prompt positions stay hidden from every later step.
    /// </summary>
    [Fact]
    public void PaddingMaskedOnlyInThePromptStaysHiddenFromLaterSteps()
    {
        using var m = Model(c => c with { RotaryPosEmb = true });
        using var _ = no_grad();
        var tokens = randint(0, 40, new long[] { 2, 9 }, generator: new Generator(4));
        var mask = ones(2, 9, dtype: ScalarType.Bool);
        mask[1, TensorIndex.Slice(0, 3)] = tensor(false);
        var full = m.Forward(tokens, mask: mask).Output;
        using var cache = new DecodingCache();
        var pieces = new List<Tensor> { m.Forward(tokens.narrow(1, 0, 5), mask: mask.narrow(1, 0, 5), cache: cache).Output };
        for (long at = 5; at < 9; at++) pieces.Add(m.Forward(tokens.narrow(1, at, 1), cache: cache).Output);
        var diff = (cat(pieces, 1) - full).abs().amax(-1).masked_select(mask);
        Assert.True(diff.max().item<double>() < 1e-10);
    }

    /// <summary>A padding mask on the first call of a cached run with Transformer-XL memories (the memories stay visible).</summary>
    [Fact]
    public void PaddingMaskWithTransformerXlMemoriesOnTheFirstCallEqualsRecompute()
    {
        using var m = Model(c => c with { RelPosBias = true }, w => w with { MaxMemLen = 4 });
        using var _ = no_grad();
        var mems = m.Forward(randint(0, 40, new long[] { 2, 5 }, generator: new Generator(7)), returnMems: true).Mems!;
        var tokens = randint(0, 40, new long[] { 2, 6 }, generator: new Generator(8));
        var mask = ones(2, 6, dtype: ScalarType.Bool);
        mask[0, TensorIndex.Slice(0, 2)] = tensor(false);
        var full = m.Forward(tokens, mask: mask, mems: mems).Output;
        using var cache = new DecodingCache();
        var a = m.Forward(tokens.narrow(1, 0, 4), mask: mask.narrow(1, 0, 4), mems: mems, cache: cache).Output;
        var b = m.Forward(tokens.narrow(1, 4, 2), mask: mask.narrow(1, 4, 2), mems: mems, cache: cache).Output;
        var diff = (cat(new[] { a, b }, 1) - full).abs().amax(-1).masked_select(mask);
        Assert.True(diff.max().item<double>() < 1e-10);
    }

    /// <summary>
    /// Cross-attention projects the context once per run: after the first call every cross-attention layer holds the
    /// context's keys and values, and self-attention layers hold none. (Cached == recompute: KvCacheTests.)
    /// </summary>
    [Fact]
    public void CrossAttentionLayersKeepTheContextsKeysAndValues()
    {
        using var m = Model(c => c with { CrossAttend = true });
        using var _ = no_grad();
        var context = randn(2, 5, 16, dtype: ScalarType.Float64);
        var tokens = randint(0, 40, new long[] { 2, 4 });
        var full = m.Forward(tokens, context: context).Output;
        using var cache = new DecodingCache();
        var a = m.Forward(tokens.narrow(1, 0, 3), context: context, cache: cache).Output;
        var b = m.Forward(tokens.narrow(1, 3, 1), context: context, cache: cache).Output;
        Assert.True((cat(new[] { a, b }, 1) - full).abs().max().item<double>() < 1e-10);
        var withContext = cache.Layers.Where(l => l.Context is not null).ToList();
        Assert.Equal(2, withContext.Count);
        Assert.All(withContext, l =>
        {
            Assert.Equal(new long[] { 2, 2, 5, 32 }, l.Context!.Value.Keys.shape);
            Assert.Equal(new long[] { 2, 2, 5, 32 }, l.Context!.Value.Values.shape);
            Assert.Equal(0, l.Length);
        });
        Assert.Equal(2, cache.Layers.Count(l => l.Length > 0));
    }

    /// <summary>The key mask kept between calls: the previous one is freed when it is extended, and the last one on Dispose.</summary>
    [Fact]
    public void TheKeyMaskIsFreedWhenExtendedAndOnDispose()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var cache = new DecodingCache();
        var first = cache.AppendMask(ones(2, 3, dtype: ScalarType.Bool), 2, 3, 0, CPU)!;
        var second = cache.AppendMask(null, 2, 1, 0, CPU)!;
        Assert.True(first.IsInvalid);
        Assert.Equal(new long[] { 2, 4 }, second.shape);
        cache.Dispose();
        Assert.True(second.IsInvalid);
    }
}
