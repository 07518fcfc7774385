using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

public class LayerCacheTests
{
    [Fact]
    public void AppendsIntoPreallocatedBuffersThatDoubleWhenFull()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var cache = new LayerCache();
        var keys = new List<Tensor>();
        var values = new List<Tensor>();
        var capacities = new List<long>();
        foreach (var n in new long[] { 50 }.Concat(Enumerable.Repeat(1L, 20)).Append(30))
        {
            var k = randn(2, 3, n, 4, dtype: ScalarType.Float64);
            var v = randn(2, 3, n, 4, dtype: ScalarType.Float64);
            keys.Add(k);
            values.Add(v);
            var (allK, allV) = cache.Append(k, v);
            Assert.True(allK.eq(cat(keys, 2)).all().item<bool>() && allV.eq(cat(values, 2)).all().item<bool>(), $"after {cache.Length} positions");
            capacities.Add(cache.Capacity);
        }
        Assert.Equal(100, cache.Length);
        // 64 positions first, written in place token by token, then doubled once (not reallocated per token).
        Assert.Equal(new long[] { 64, 128 }, capacities.Distinct());
        Assert.Equal(15, capacities.Count(c => c == 64));
    }

    [Fact]
    public void KeysThatNeedGradientsAreConcatenatedSoAutogradFollows()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var cache = new LayerCache();
        var a = randn(1, 1, 3, 2, requires_grad: true);
        var b = randn(1, 1, 2, 2, requires_grad: true);
        // The cache owns what it is given (it may dispose it), so it gets fresh tensors, not the leaves.
        cache.Append(a * 1, a * 2);
        var (k, v) = cache.Append(b * 1, b * 2);
        Assert.Equal(cache.Length, cache.Capacity);
        (k.sum() + v.sum()).backward();
        Assert.True(a.grad!.allclose(full_like(a, 3.0)) && b.grad!.allclose(full_like(b, 3.0)));
    }

    /// <summary>A decoder with weights perturbed by N(0, 0.1), as the parity fixtures are (zero-initialised paths would hide bugs).</summary>
    static TransformerWrapper Perturbed(bool qkvBias)
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        var generator = new Generator(5);
        var m = new TransformerWrapper(new TransformerWrapperConfig
        {
            NumTokens = 30, MaxSeqLen = 160,
            AttnLayers = new AttentionLayersConfig
            {
                Type = LayerStackType.Decoder, Dim = 16, Depth = 2, Heads = 2, RotaryPosEmb = true, Attn = new() { DimHead = 32, QkvBias = qkvBias },
            },
        });
        m.to(ScalarType.Float64).eval();
        using (no_grad())
            foreach (var p in m.parameters()) p.add_(randn(p.shape, dtype: p.dtype, generator: generator) * 0.1);
        return m;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CachedDecodingPastTheFirstBufferEqualsRecomputeWithOneStackedProjection(bool qkvBias)
    {
        using var m = Perturbed(qkvBias);
        using var _ = no_grad();
        var tokens = randint(0, 30, new long[] { 2, 150 }, generator: new Generator(6));
        var full = m.Forward(tokens).Output;
        using var cache = (DecodingCache)m.CreateDecodingState()!;
        var pieces = new List<Tensor>();
        long at = 0;
        foreach (var len in new long[] { 60 }.Concat(Enumerable.Repeat(1L, 10)).Append(80))
        {
            pieces.Add(m.Forward(tokens.narrow(1, at, len), cache: cache).Output);
            at += len;
        }
        Assert.True((cat(pieces, 1) - full).abs().max().item<double>() < 1e-10);
        // Every attention layer stacked W_q, W_k, W_v once for the whole run, and grew its buffers past 64 positions.
        var attentionLayers = cache.Layers.Where(l => l.Length > 0).ToList();
        Assert.Equal(2, attentionLayers.Count);
        Assert.All(attentionLayers, l => Assert.Contains("fused_qkv", l.DerivedNames));
        // ... and every projection of a decoding step multiplied by its weight transposed once (see LayerCache.Linear).
        Assert.All(attentionLayers, l => Assert.Contains("to_out", l.DerivedNames));
        var feedForwardLayers = cache.Layers.Where(l => l.Length == 0).ToList();
        Assert.Equal(2, feedForwardLayers.Count);
        Assert.All(feedForwardLayers, l => Assert.Equal(new[] { "ff_in", "ff_in.bias", "ff_out", "ff_out.bias" }, l.DerivedNames.Order()));
        Assert.All(attentionLayers, l => Assert.Equal(256, l.Capacity));
        // The parameters keep x-transformers' names.
        var names = m.state_dict().Keys.ToList();
        Assert.Contains("attn_layers.layers.0.1.to_q.weight", names);
        Assert.Contains("attn_layers.layers.0.1.to_v.weight", names);
        Assert.DoesNotContain(names, n => n.Contains("qkv"));
    }

    /// <summary>A prompt longer than twice the buffer (the first call of a long prompt) gets a buffer that holds it.</summary>
    [Theory]
    [InlineData(new long[] { 200 })]
    [InlineData(new long[] { 10, 150 })]
    public void AChunkLongerThanTwiceTheBufferFitsInOneGrowth(long[] chunks)
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        using var cache = new LayerCache();
        var keys = new List<Tensor>();
        foreach (var n in chunks)
        {
            var k = randn(1, 2, n, 4, dtype: ScalarType.Float64);
            keys.Add(k);
            var (allK, allV) = cache.Append(k, k * 2);
            Assert.True(allK.allclose(cat(keys, 2), rtol: 0, atol: 0) && allV.allclose(cat(keys, 2) * 2, rtol: 0, atol: 0));
        }
        Assert.Equal(chunks.Sum(), cache.Length);
        Assert.True(cache.Capacity >= cache.Length);
    }

    /// <summary>
    /// Keys of another batch size, head count, head size or dtype cannot join the cached ones: refused with a clear
    /// error, never broadcast or converted into the buffer.
    /// </summary>
    [Theory]
    [InlineData(1, 3, 4, false)]
    [InlineData(2, 1, 4, false)]
    [InlineData(2, 3, 5, false)]
    [InlineData(2, 3, 4, true)]
    public void KeysOfAnotherLayoutAreRefused(long batch, long heads, long dimHead, bool float32)
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        using var cache = new LayerCache();
        var k = randn(2, 3, 4, 4, dtype: ScalarType.Float64);
        cache.Append(k, k);
        var other = randn(batch, heads, 1, dimHead, dtype: float32 ? ScalarType.Float32 : ScalarType.Float64);
        var e = Assert.Throws<InvalidOperationException>(() => cache.Append(other, other));
        Assert.Contains("changed batch, heads, size, dtype or device", e.Message);
    }

    /// <summary>Keys that need gradients with values that do not (a frozen value projection): autograd still reaches the keys.</summary>
    [Fact]
    public void KeysThatNeedGradientsWithValuesThatDoNotStillGetTheirGradients()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        using var cache = new LayerCache();
        var a = randn(1, 1, 3, 2, dtype: ScalarType.Float64, requires_grad: true);
        var b = randn(1, 1, 2, 2, dtype: ScalarType.Float64, requires_grad: true);
        cache.Append(a * 1, randn(1, 1, 3, 2, dtype: ScalarType.Float64));
        var (k, _) = cache.Append(b * 2, randn(1, 1, 2, 2, dtype: ScalarType.Float64));
        Assert.Equal(5, cache.Length);
        (k * k).sum().backward();
        Assert.True(a.grad!.allclose(2 * a.detach()) && b.grad!.allclose(8 * b.detach()));
    }

    /// <summary>Disposing a cache frees everything it holds at once and leaves it empty and usable again.</summary>
    [Fact]
    public void DisposeFreesEverythingAndLeavesAnEmptyCache()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var cache = new LayerCache();
        var k = randn(1, 2, 3, 4);
        cache.Append(k, k);
        cache.KeepHistory(CacheHistory.ShiftTokens, randn(1, 2, 8));
        var history = cache.History(CacheHistory.ShiftTokens)!;
        var derived = cache.Derived("w", () => randn(8, 8));
        cache.SetContext(randn(1, 2, 5, 4), randn(1, 2, 5, 4));
        var (contextKeys, contextValues) = cache.Context!.Value;

        cache.Dispose();

        Assert.True(history.IsInvalid && derived.IsInvalid && contextKeys.IsInvalid && contextValues.IsInvalid);
        Assert.Equal(0, cache.Length);
        Assert.Null(cache.History(CacheHistory.ShiftTokens));
        Assert.Empty(cache.DerivedNames);
        Assert.Null(cache.Context);
        var fresh = randn(1, 2, 1, 4);
        Assert.True(cache.Append(fresh, fresh).Keys.allclose(fresh, rtol: 0, atol: 0));
        Assert.True(cache.Derived("w", () => ones(2)).allclose(ones(2), rtol: 0, atol: 0));
        cache.Dispose();
    }

    /// <summary>A decoding run keeps one history per kind alive, not one per step: the replaced one is freed.</summary>
    [Fact]
    public void KeepingAHistoryFreesTheOneItReplaces()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        using var cache = new LayerCache();
        cache.KeepHistory(CacheHistory.QueryConv, randn(1, 2, 8));
        var first = cache.History(CacheHistory.QueryConv)!;
        var second = randn(1, 2, 8);
        cache.KeepHistory(CacheHistory.QueryConv, second);
        Assert.True(first.IsInvalid);
        Assert.True(cache.History(CacheHistory.QueryConv)!.allclose(second, rtol: 0, atol: 0));
    }
}

