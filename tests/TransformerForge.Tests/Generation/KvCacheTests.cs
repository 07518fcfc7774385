using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Models;
using TransformerForge.Modules;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Generation;

/// <summary>
/// Feeding a sequence in pieces through the KV cache gives the logits of feeding it whole, for every scheme the cache
/// supports. Weights are perturbed as the fixtures' are, so gates that start at zero (ReZero) or one (scales) take part.
/// </summary>
public class KvCacheTests
{
    static TransformerWrapper Model(Func<AttentionLayersConfig, AttentionLayersConfig> options, Func<TransformerWrapperConfig, TransformerWrapperConfig>? wrapper = null) =>
        Build.Decoder(options, wrapper);

    public static TheoryData<string> Schemes() => new()
    {
        "absolute", "rotary", "alibi", "alibi_partial_learned", "t5", "position_infused", "persistent_mem_kv", "shift_tokens",
        "shift_tokens_per_layer", "memory_tokens", "residual_attn", "talking_heads", "sparse_topk", "entmax15", "collab_heads",
        "macaron_sandwich", "gate_residual_rezero", "post_norm", "glu_relu_squared", "normformer", "value_gates_on_attn", "primer_ez", "primer_dconv_shared_heads_rotary",
    };

    static TransformerWrapper ModelFor(string scheme) => scheme switch
    {
        "absolute" => Model(c => c),
        "rotary" => Model(c => c with { RotaryPosEmb = true }, w => w),
        "alibi" => Model(c => c with { AlibiPosBias = true }),
        "alibi_partial_learned" => Model(c => c with { AlibiPosBias = true, AlibiNumHeads = 2, AlibiLearned = true }),
        "t5" => Model(c => c with { RelPosBias = true }),
        "position_infused" => Model(c => c with { PositionInfusedAttn = true }),
        "persistent_mem_kv" => Model(c => c with { Attn = c.Attn with { NumMemKv = 3 } }),
        "shift_tokens" => Model(c => c with { ShiftTokens = new[] { 2 } }),
        "shift_tokens_per_layer" => Model(c => c with { ShiftTokens = new[] { 1, 0, 2, 1 } }),
        "memory_tokens" => Model(c => c, w => w with { NumMemoryTokens = 2 }),
        "residual_attn" => Model(c => c with { ResidualAttn = true }),
        "talking_heads" => Model(c => c with { Attn = c.Attn with { TalkingHeads = true } }),
        "sparse_topk" => Model(c => c with { Attn = c.Attn with { SparseTopk = 3 } }),
        "entmax15" => Model(c => c with { Attn = c.Attn with { UseEntmax15 = true } }),
        "collab_heads" => Model(c => c with { Attn = c.Attn with { CollabHeads = true, CollabCompression = 0.5 } }),
        "macaron_sandwich" => Model(c => c with { Macaron = true, SandwichNorm = true }),
        "gate_residual_rezero" => Model(c => c with { GateResidual = true, UseRezero = true, ScaleResidual = true }),
        "post_norm" => Model(c => c with { PreNorm = false, UseScalenorm = true }),
        "glu_relu_squared" => Model(c => c with { Ff = c.Ff with { Glu = true, ReluSquared = true }, UseRmsnorm = true }),
        "normformer" => Model(c => c with { Attn = c.Attn with { HeadScale = true }, Ff = c.Ff with { PostActLn = true } }),
        "value_gates_on_attn" => Model(c => c with { Attn = c.Attn with { GateValues = true, OnAttn = true } }),
        "primer_ez" => Model(c => c with { PrimerEz = true }),
        "primer_dconv_shared_heads_rotary" => Model(c => c with { Attn = c.Attn with { Dconv = true, DconvSharedHeads = true, DconvKernelSize = 5 }, RotaryPosEmb = true }),
        _ => throw new ArgumentException(scheme),
    };

    [Theory]
    [MemberData(nameof(Schemes))]
    public void CachedLogitsEqualFullRecompute(string scheme)
    {
        using var m = ModelFor(scheme);
        using var _ = no_grad();
        var tokens = randint(0, 40, new long[] { 2, 12 });
        var full = m.Forward(tokens).Output;

        using var cache = (DecodingCache)m.CreateDecodingState()!;
        var pieces = new List<Tensor>();
        long at = 0;
        foreach (var len in new long[] { 5, 1, 1, 3, 1, 1 })
        {
            pieces.Add(m.Forward(tokens.narrow(1, at, len), cache: cache).Output);
            at += len;
        }
        var cached = cat(pieces, 1);
        Assert.Equal(12, cache.TokenLength);
        Assert.True((cached - full).abs().max().item<double>() < 1e-10, $"{scheme}: max diff {(cached - full).abs().max().item<double>()}");
    }

    [Fact]
    public void CachedEqualsRecomputeWithPaddingMask()
    {
        using var m = ModelFor("rotary");
        using var _ = no_grad();
        var tokens = randint(0, 40, new long[] { 2, 10 });
        var mask = ones(2, 10, dtype: ScalarType.Bool);
        mask[1, TensorIndex.Slice(0, 3)] = tensor(false);
        var full = m.Forward(tokens, mask: mask).Output;
        using var cache = new DecodingCache();
        var a = m.Forward(tokens.narrow(1, 0, 6), mask: mask.narrow(1, 0, 6), cache: cache).Output;
        var b = m.Forward(tokens.narrow(1, 6, 4), mask: mask.narrow(1, 6, 4), cache: cache).Output;
        // Padded positions attend to nothing real (x-transformers spreads them uniformly over every key); only real positions must agree.
        var diff = (cat(new[] { a, b }, 1) - full).abs().amax(-1).masked_select(mask);
        Assert.True(diff.max().item<double>() < 1e-10);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CachedEqualsRecomputeWithTransformerXlMemories(bool rotary)
    {
        using var m = Model(c => c with { RotaryPosEmb = rotary, RelPosBias = !rotary }, w => w with { MaxMemLen = 8, ShiftMemDown = rotary ? 1 : 0 });
        using var _ = no_grad();
        var seg0 = randint(0, 40, new long[] { 2, 6 });
        var mems = m.Forward(seg0, returnMems: true).Mems!;
        var seg1 = randint(0, 40, new long[] { 2, 7 });
        var full = m.Forward(seg1, mems: mems).Output;
        using var cache = new DecodingCache();
        var a = m.Forward(seg1.narrow(1, 0, 4), mems: mems, cache: cache).Output;
        var b = m.Forward(seg1.narrow(1, 4, 3), mems: mems, cache: cache).Output;
        Assert.True((cat(new[] { a, b }, 1) - full).abs().max().item<double>() < 1e-10);
    }

    [Fact]
    public void CrossAttentionDecoderCachesTheContext()
    {
        using var m = Model(c => c with { CrossAttend = true });
        using var _ = no_grad();
        var context = randn(2, 5, 32, dtype: ScalarType.Float64);
        var tokens = randint(0, 40, new long[] { 2, 8 });
        var full = m.Forward(tokens, context: context).Output;
        using var cache = new DecodingCache();
        var a = m.Forward(tokens.narrow(1, 0, 3), context: context, cache: cache).Output;
        var b = m.Forward(tokens.narrow(1, 3, 5), context: context, cache: cache).Output;
        Assert.True((cat(new[] { a, b }, 1) - full).abs().max().item<double>() < 1e-10);
    }

    [Fact]
    public void GreedyGenerationWithCacheEqualsWithout()
    {
        using var m = ModelFor("alibi");
        var prompt = randint(0, 40, new long[] { 2, 4 });
        var cached = Autoregressive.Generate(m, prompt, 20, new SamplingOptions { Greedy = true });
        var uncached = Autoregressive.Generate(m, prompt, 20, new SamplingOptions { Greedy = true, UseCache = false });
        Assert.Equal(new long[] { 2, 20 }, cached.shape);
        Assert.True(cached.eq(uncached).all().item<bool>());
    }

    [Fact]
    public void GenerationPastMaxSeqLenFallsBackToTheWindow()
    {
        using var m = ModelFor("absolute");
        var prompt = randint(0, 40, new long[] { 1, 30 });
        var cached = Autoregressive.Generate(m, prompt, 10, new SamplingOptions { Greedy = true });
        var uncached = Autoregressive.Generate(m, prompt, 10, new SamplingOptions { Greedy = true, UseCache = false });
        Assert.True(cached.eq(uncached).all().item<bool>());
    }
}
