using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

/// <summary>
/// <see cref="Attention"/>'s two paths: libtorch's fused kernel serves every configuration it served before, and for
/// every kind of mask (padding, attn_mask, max_attend_past, persistent memory, cached keys, position biases) the fused
/// and the explicit path give the same output, because one mask builder serves both. Weights perturbed, float64.
/// </summary>
public class AttentionTests
{
    const int Dim = 16, Heads = 4;

    static Attention Build(AttentionOptions options, bool causal = true)
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        manual_seed(11);
        var attention = new Attention(Dim, Heads, causal, options with { DimHead = 8 });
        attention.to(ScalarType.Float64).eval();
        return TransformerForge.Tests.Support.Weights.Perturb(attention);
    }

    static Tensor Padding(long batch, long n, int padded)
    {
        var mask = ones(batch, n, dtype: ScalarType.Bool);
        mask[1, TensorIndex.Slice(0, padded)] = tensor(false);
        return mask;
    }

    public static TheoryData<string> MaskCases() => new()
    {
        "causal", "causal_padding", "encoder_padding", "attn_mask_2d", "attn_mask_4d", "max_attend_past", "max_attend_past_encoder",
        "persistent_mem_kv_padding", "cached_keys_padding", "alibi_padding", "t5_causal", "cross_context_mask", "dconv_qkv_bias_padding",
    };

    [Theory]
    [MemberData(nameof(MaskCases))]
    public void FusedAndExplicitPathsAgree(string maskCase)
    {
        long b = 2, n = 7;
        var x = randn(b, n, Dim, dtype: ScalarType.Float64);
        var options = new AttentionOptions();
        bool causal = true;
        BlockInputs inputs = new();
        switch (maskCase)
        {
            case "causal": break;
            case "causal_padding": inputs = new() { Mask = Padding(b, n, 3) }; break;
            case "encoder_padding": causal = false; inputs = new() { Mask = Padding(b, n, 2) }; break;
            case "attn_mask_2d": causal = false; inputs = new() { AttnMask = rand(n, n).gt(0.3).logical_or(eye(n, dtype: ScalarType.Bool)) }; break;
            case "attn_mask_4d": inputs = new() { AttnMask = rand(b, Heads, n, n).gt(0.5), Mask = Padding(b, n, 1) }; break;
            case "max_attend_past": options = options with { MaxAttendPast = 2 }; inputs = new() { Mask = Padding(b, n, 1) }; break;
            case "max_attend_past_encoder": causal = false; options = options with { MaxAttendPast = 1 }; break;
            case "persistent_mem_kv_padding": causal = false; options = options with { NumMemKv = 3 }; inputs = new() { Mask = Padding(b, n, 2) }; break;
            case "cached_keys_padding":
                // Keys outnumber queries (earlier positions from a cache or memory): the key mask covers them all.
                var mem = randn(b, 4, Dim, dtype: ScalarType.Float64);
                var keyMask = cat(new[] { ones(b, 4, dtype: ScalarType.Bool), Padding(b, n, 2) }, 1);
                keyMask[0, 1] = tensor(false);
                inputs = new() { Mem = mem, Mask = Padding(b, n, 2), KeyMask = keyMask };
                break;
            case "alibi_padding":
                inputs = new() { Positions = new PositionInputs { Alibi = new AlibiPositionalBias(2, learned: false) }, Mask = Padding(b, n, 2) };
                break;
            case "t5_causal":
                var t5 = new RelativePositionBias(Math.Sqrt(8), causal: true, numBuckets: 8, maxDistance: 16, Heads);
                t5.to(ScalarType.Float64);
                inputs = new() { Positions = new PositionInputs { T5 = t5 } };
                break;
            case "cross_context_mask":
                causal = false;
                var contextMask = ones(b, 5, dtype: ScalarType.Bool);
                contextMask[1, TensorIndex.Slice(3, 5)] = tensor(false);
                inputs = new() { Context = randn(b, 5, Dim, dtype: ScalarType.Float64), ContextMask = contextMask, Mask = Padding(b, n, 1) };
                break;
            case "dconv_qkv_bias_padding": options = options with { Dconv = true, QkvBias = true }; inputs = new() { Mask = Padding(b, n, 2) }; break;
            default: throw new ArgumentException(maskCase);
        }
        using var attention = Build(options, causal);
        using var _ = no_grad();

        long keys = options.NumMemKv + (inputs.Context?.shape[1] ?? (inputs.Mem?.shape[1] ?? 0) + n);
        Assert.True(attention.UsesFusedKernel(inputs, keys));
        Assert.False(attention.UsesFusedKernel(inputs with { NeedAttention = true }, keys));
        var fused = attention.Forward(x, inputs).Output;
        var explicitPath = attention.Forward(x, inputs with { NeedAttention = true });
        Assert.NotNull(explicitPath.PostSoftmaxAttn);
        var diff = (fused - explicitPath.Output).abs().max().item<double>();
        Assert.True(diff < 1e-12, $"{maskCase}: fused and explicit differ by {diff:E3}");
    }

    /// <summary>
    /// The mask builder against a hand-written reference: with causality, <c>max_attend_past</c>, an attn_mask, key
    /// padding and persistent memory together, a query's attention weights are non-zero exactly on the keys every rule
    /// allows (distances and causality count the memory key/values as x-transformers 0.20 does). Padded queries are skipped.
    /// </summary>
    [Fact]
    public void EveryRuleHidesExactlyItsKeys()
    {
        const int n = 6, memKv = 2, past = 2, j = memKv + n;
        using var attention = Build(new AttentionOptions { NumMemKv = memKv, MaxAttendPast = past });
        using var _ = no_grad();
        manual_seed(5);
        var mask = Padding(2, n, 2);
        var attnMask = rand(n, j).gt(0.3);
        for (int q = 0; q < n; q++) attnMask[q, memKv + q] = tensor(true);
        var inputs = new BlockInputs { Mask = mask, AttnMask = attnMask, NeedAttention = true };
        var weights = attention.Forward(randn(2, n, Dim, dtype: ScalarType.Float64), inputs).PostSoftmaxAttn!;

        for (int b = 0; b < 2; b++)
            for (int q = 0; q < n; q++)
            {
                if (!mask[b, q].item<bool>()) continue;
                int position = j - n + q;   // the query's index among the keys
                for (int k = 0; k < j; k++)
                {
                    bool visible = (k < memKv || mask[b, k - memKv].item<bool>()) && attnMask[q, k].item<bool>()
                        && position - k <= past && k <= position;
                    for (int h = 0; h < Heads; h++)
                        Assert.True(visible == (weights[b, h, q, k].item<double>() > 0), $"batch {b}, query {q}, key {k}, head {h}: expected {(visible ? "visible" : "hidden")}");
                }
            }
    }

    /// <summary>The fused kernel's reach: every option that does not need the score matrix runs on it.</summary>
    [Theory]
    [InlineData("plain", true)]
    [InlineData("num_mem_kv", true)]
    [InlineData("gate_values_on_attn_head_scale", true)]
    [InlineData("dconv", true)]
    [InlineData("max_attend_past", true)]
    [InlineData("sparse_topk_at_least_keys", true)]
    [InlineData("dropout", true)]
    [InlineData("sparse_topk_below_keys", false)]
    [InlineData("talking_heads", false)]
    [InlineData("collab_heads", false)]
    [InlineData("entmax15", false)]
    [InlineData("residual_attn", false)]
    public void FusedKernelRunsWhereverNoOptionNeedsTheScores(string option, bool fused)
    {
        var o = new AttentionOptions();
        var inputs = new BlockInputs();
        o = option switch
        {
            "plain" => o,
            "num_mem_kv" => o with { NumMemKv = 2 },
            "gate_values_on_attn_head_scale" => o with { GateValues = true, OnAttn = true, HeadScale = true },
            "dconv" => o with { Dconv = true, DconvSharedHeads = true, QkvBias = true },
            "max_attend_past" => o with { MaxAttendPast = 3 },
            "sparse_topk_at_least_keys" => o with { SparseTopk = 8 },
            "dropout" => o with { Dropout = 0.1 },
            "sparse_topk_below_keys" => o with { SparseTopk = 7 },
            "talking_heads" => o with { TalkingHeads = true },
            "collab_heads" => o with { CollabHeads = true, CollabCompression = 0.5 },
            "entmax15" => o with { UseEntmax15 = true },
            "residual_attn" => o,
            _ => throw new ArgumentException(option),
        };
        if (option == "residual_attn") inputs = inputs with { PrevAttn = zeros(1, Heads, 8, 8) };
        using var attention = Build(o);
        Assert.Equal(fused, attention.UsesFusedKernel(inputs, keys: 8));
    }
    /// <summary>
    /// Masks in half and bfloat16 precision (mixed-precision training): masked keys get no weight and a query that may
    /// see no key spreads its weight evenly (0.20), as in float64. The mask value must stay finite and negative in the
    /// narrow type: -1e30 overflows float16 to -inf (fully masked rows of the fused kernel become NaN).
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float16, true)]
    [InlineData(ScalarType.Float16, false)]
    [InlineData(ScalarType.BFloat16, true)]
    [InlineData(ScalarType.BFloat16, false)]
    public void MasksHoldInLowPrecision(ScalarType dtype, bool fused)
    {
        const int n = 6;
        using var attention = Build(new AttentionOptions(), causal: false);
        var x = randn(2, n, Dim, dtype: ScalarType.Float64, generator: new Generator(7));
        var mask = Padding(2, n, 2);
        mask[0, TensorIndex.Colon] = tensor(false);                        // the first sequence: no visible key at all
        var inputs = new BlockInputs { Mask = mask, NeedAttention = !fused };
        Assert.Equal(fused, attention.UsesFusedKernel(inputs, n, dtype));
        using var _ = no_grad();
        var exact = attention.Forward(x, inputs).Output;
        attention.to(dtype);
        try
        {
            var low = attention.Forward(x.to_type(dtype), inputs).Output.to_type(ScalarType.Float64);
            // 0.20 hides a pair when either side is padding: the real queries are the second sequence's last four.
            var real = mask.unsqueeze(-1).expand(2, n, Dim);
            double realErr = (low - exact).masked_select(real).abs().max().item<double>();
            double hiddenErr = (low - exact).masked_select(real.logical_not()).abs().max().item<double>();
            Assert.True(realErr < 0.05, $"{dtype}, {(fused ? "fused" : "explicit")}: off by {realErr}");
            Assert.False(low.isnan().any().item<bool>(), "a query that sees no key gives NaN");
            // The fused float16 kernel adds -30000 to the scores, which float16 rounds in steps of 16: a query that sees
            // no key gets finite but not exactly uniform weights (the explicit path replaces the scores instead).
            if (!(fused && dtype == ScalarType.Float16)) Assert.True(hiddenErr < 0.05, $"{dtype}, fully masked: off by {hiddenErr}");
        }
        finally { attention.to(ScalarType.Float64); }
    }
}
