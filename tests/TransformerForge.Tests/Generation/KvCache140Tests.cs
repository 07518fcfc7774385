using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Models;
using TransformerForge.Modules;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Generation;

/// <summary>
/// x-transformers 1.40's options decode with the KV cache: feeding a sequence in pieces gives the logits of feeding it
/// whole (float64, 1e-10), with every parameter perturbed by N(0, 0.1) so that zero- or one-initialised parameters
/// (gates, LayerScale, norm offsets, skip combiners) take generic values.
/// </summary>
public class KvCache140Tests
{
    const string Layers = "\"type\": \"Decoder\", \"dim\": 32, \"depth\": 2, \"heads\": 4, \"attn_dim_head\": 16";

    /// <summary>Scheme → the 1.40 options it adds to a small decoder (and to the wrapper, after a '|').</summary>
    public static readonly Dictionary<string, string> Schemes = new()
    {
        ["base"] = "",
        ["gqa"] = "\"attn_kv_heads\": 2",
        ["mqa"] = "\"attn_one_kv_head\": true",
        ["qk_norm_dim_scale_groups"] = "\"attn_qk_norm\": true, \"attn_qk_norm_dim_scale\": true, \"attn_qk_norm_groups\": 2",
        ["qk_norm_gqa_mem_kv"] = "\"attn_qk_norm\": true, \"attn_kv_heads\": 2, \"attn_num_mem_kv\": 3",
        ["qk_norm_scale"] = "\"attn_qk_norm\": true, \"attn_qk_norm_scale\": 4.0",
        ["unit_offset_rmsnorm"] = "\"use_rmsnorm\": true, \"norm_add_unit_offset\": true",
        ["swiglu_no_bias_simple_rmsnorm"] = "\"ff_swish\": true, \"ff_glu\": true, \"ff_no_bias\": true, \"use_simple_rmsnorm\": true",
        ["dynamic_pos_bias"] = "\"dynamic_pos_bias\": true",
        ["dynamic_pos_bias_log_norm"] = "\"dynamic_pos_bias\": true, \"dynamic_pos_bias_log_distance\": true, \"dynamic_pos_bias_norm\": true",
        ["dynamic_pos_bias_mlp_depth"] = "\"dynamic_pos_bias\": true, \"dynamic_pos_bias_mlp_depth\": 3",
        ["resi_dual"] = "\"resi_dual\": true, \"resi_dual_scale\": 0.5",
        ["value_residual"] = "\"add_value_residual\": true, \"depth\": 3",
        ["layerscale"] = "\"use_layerscale\": true, \"layerscale_init_value\": 0.5",
        ["unet_skips"] = "\"unet_skips\": true, \"depth\": 4",
        ["weight_tie_layers"] = "\"weight_tie_layers\": true, \"depth\": 3",
        ["softclamp"] = "\"attn_softclamp_logits\": true, \"attn_logit_softclamp_value\": 3.0, \"softclamp_output\": true, \"softclamp_output_value\": 2.0",
        ["rotary"] = "\"rotary_pos_emb\": true, \"attn_dim_head\": 32",
        ["rotary_xpos"] = "\"rotary_xpos\": true, \"rotary_xpos_scale_base\": 8, \"attn_dim_head\": 32",
        ["gate_value_heads"] = "\"attn_gate_value_heads\": true",
        ["talking_heads"] = "\"attn_pre_talking_heads\": true, \"attn_post_talking_heads\": true",
        ["alibi"] = "\"alibi_pos_bias\": true, \"alibi_num_heads\": 2",
        ["t5"] = "\"rel_pos_bias\": true",
        ["residual_attn_post_norm"] = "\"residual_attn\": true, \"pre_norm\": false",
        ["sandwich_macaron_shift"] = "\"sandwich_norm\": true, \"macaron\": true, \"shift_tokens\": 1",
        ["l2norm_embed"] = "| \"l2norm_embed\": true",
        ["memory_tokens_emb_dim"] = "\"attn_qk_norm\": true | \"num_memory_tokens\": 2, \"emb_dim\": 24",
        ["llama"] = "\"rotary_pos_emb\": true, \"attn_dim_head\": 32, \"attn_kv_heads\": 2, \"ff_swish\": true, \"ff_glu\": true, \"ff_no_bias\": true, \"use_rmsnorm\": true",
    };

    public static TheoryData<string> SchemeNames() => new(Schemes.Keys);

    internal static TransformerWrapper Model(string scheme, ScalarType dtype = ScalarType.Float64)
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        var parts = Schemes[scheme].Split('|');
        var layerOptions = parts[0].Trim();
        var wrapperOptions = parts.Length > 1 ? parts[1].Trim() + ", " : "";
        // Later keys win: a scheme may override the base depth or head width.
        var layers = Dedupe(Layers + (layerOptions.Length > 0 ? ", " + layerOptions : ""));
        var json = $$"""{ "type": "TransformerWrapper", "x_transformers_version": "1.40", {{wrapperOptions}}"num_tokens": 40, "max_seq_len": 32, "attn_layers": { {{layers}} } }""";
        manual_seed(0);
        var m = (TransformerWrapper)ModelFactory.CreateLanguageModel(ModelConfig.Parse(json));
        m.to(dtype);
        Weights.Perturb(m, 1);
        m.eval();
        return m;
    }

    static string Dedupe(string keyValues)
    {
        var pairs = keyValues.Split(", \"").Select((p, i) => i == 0 ? p : "\"" + p).ToList();
        var byKey = new Dictionary<string, string>();
        foreach (var p in pairs) byKey[p[..p.IndexOf(':')]] = p;
        return string.Join(", ", byKey.Values);
    }

    [Theory]
    [MemberData(nameof(SchemeNames))]
    public void CachedLogitsEqualFullRecompute(string scheme)
    {
        using var m = Model(scheme);
        using var _ = no_grad();
        using var g = new Generator(5);
        var tokens = randint(0, 40, new long[] { 2, 12 }, generator: g);
        var full = m.Forward(tokens).Output;

        using var cache = (DecodingCache)m.CreateDecodingState()!;
        var pieces = new List<Tensor>();
        long at = 0;
        foreach (var len in new long[] { 5, 1, 1, 3, 1, 1 })
        {
            pieces.Add(m.Forward(tokens.narrow(1, at, len), cache: cache).Output);
            at += len;
        }
        var diff = (cat(pieces, 1) - full).abs().max().item<double>();
        Assert.True(diff < 1e-10, $"{scheme}: max diff {diff}");
        Assert.Equal(m.AttnLayers.ExecutionOrder.Count, cache.Layers.Count);
    }

    [Fact]
    public void GroupedQueryAttentionCachesOnlyItsKeyValueHeads()
    {
        using var m = Model("gqa");
        using var _ = no_grad();
        using var cache = (DecodingCache)m.CreateDecodingState()!;
        m.Forward(randint(0, 40, new long[] { 2, 6 }), cache: cache);
        var (keys, values) = cache.Layers[0].Append(zeros(2, 2, 0, 16, dtype: ScalarType.Float64), zeros(2, 2, 0, 16, dtype: ScalarType.Float64));
        Assert.Equal(new long[] { 2, 2, 6, 16 }, keys.shape);   // 2 key/value heads for 4 query heads
        Assert.Equal(new long[] { 2, 2, 6, 16 }, values.shape);
    }

    [Theory]
    [InlineData("gqa")]
    [InlineData("mqa")]
    [InlineData("llama")]
    public void Float32FusedPathCachesAsWell(string scheme)
    {
        // In float32 1.40's attention runs libtorch's fused kernel, grouped heads folded into the queries.
        using var m = Model(scheme, ScalarType.Float32);
        using var _ = no_grad();
        var tokens = randint(0, 40, new long[] { 2, 10 });
        var full = m.Forward(tokens).Output;
        using var cache = (DecodingCache)m.CreateDecodingState()!;
        var a = m.Forward(tokens.narrow(1, 0, 6), cache: cache).Output;
        var b = m.Forward(tokens.narrow(1, 6, 4), cache: cache).Output;
        var diff = (cat(new[] { a, b }, 1) - full).abs().max().item<float>();
        Assert.True(diff < 1e-4, $"{scheme}: max diff {diff}");
    }

    [Fact]
    public void CachedEqualsRecomputeWithPaddingMaskAndCrossAttention()
    {
        // Cross-attention with grouped heads and value residuals (first cross-attention's values reach the second).
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        var config = ModelConfig.Parse($$"""
            { "type": "TransformerWrapper", "x_transformers_version": "1.40", "num_tokens": 40, "max_seq_len": 32,
              "attn_layers": { "type": "Decoder", "dim": 32, "depth": 2, "heads": 4, "cross_attend": true, "attn_kv_heads": 2,
                               "add_value_residual": true, "rotary_pos_emb": true, "attn_dim_head": 32 } }
            """);
        using var m = (TransformerWrapper)ModelFactory.Create(config);
        m.to(ScalarType.Float64);
        Weights.Perturb(m, 2);
        m.eval();
        using var _ = no_grad();
        var tokens = randint(0, 40, new long[] { 2, 9 });
        var context = randn(2, 5, 32, dtype: ScalarType.Float64);
        var contextMask = ones(2, 5, dtype: ScalarType.Bool);
        contextMask[0, TensorIndex.Slice(3)] = tensor(false);
        var mask = ones(2, 9, dtype: ScalarType.Bool);
        mask[1, TensorIndex.Slice(0, 2)] = tensor(false);
        var full = m.Forward(tokens, mask: mask, context: context, contextMask: contextMask).Output;
        using var cache = new DecodingCache();
        var a = m.Forward(tokens.narrow(1, 0, 4), mask: mask.narrow(1, 0, 4), context: context, contextMask: contextMask, cache: cache).Output;
        var b = m.Forward(tokens.narrow(1, 4, 5), mask: mask.narrow(1, 4, 5), context: context, contextMask: contextMask, cache: cache).Output;
        Assert.True((cat(new[] { a, b }, 1) - full).abs().max().item<double>() < 1e-10);
    }

    [Fact]
    public void GreedyGenerationWithCacheEqualsWithout()
    {
        using var m = Model("llama");
        var prompt = randint(0, 40, new long[] { 2, 4 });
        var cached = Autoregressive.Generate(m, prompt, 16, new SamplingOptions { Greedy = true });
        var uncached = Autoregressive.Generate(m, prompt, 16, new SamplingOptions { Greedy = true, UseCache = false });
        Assert.True(cached.eq(uncached).all().item<bool>());
    }
}
