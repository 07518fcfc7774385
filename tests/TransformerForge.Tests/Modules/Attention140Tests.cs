using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Modules;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

/// <summary>
/// <see cref="Attention"/> under x-transformers 1.40: the fused kernel (grouped key/value heads folded into the queries,
/// qk-norm's scale folded into them) and the explicit score matrix give the same output for every mask and position
/// bias; the fused kernel runs wherever 1.40's semantics allow it. float32 (1.40's softmax is float32 either way), weights perturbed.
/// </summary>
public class Attention140Tests
{
    const int Dim = 16, Heads = 4;

    static Attention Build(AttentionOptions options, bool causal = true, ScalarType dtype = ScalarType.Float32)
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        manual_seed(12);
        var attention = new Attention(Dim, Heads, causal, options with { DimHead = 8, Version = XTransformersVersion.V1_40 });
        attention.to(dtype).eval();
        return Weights.Perturb(attention, 12);
    }

    static Tensor Padding(long batch, long n, int padded)
    {
        var mask = ones(batch, n, dtype: ScalarType.Bool);
        mask[1, TensorIndex.Slice(0, padded)] = tensor(false);
        return mask;
    }

    public static TheoryData<string> Cases() => new()
    {
        "gqa_causal", "gqa_encoder_padding", "mqa_alibi_padding", "gqa_t5_cached_keys_padding", "gqa_mem_kv_padding",
        "qk_norm_causal", "qk_norm_gqa_attn_mask", "gqa_cross_context_mask", "gqa_dynamic_bias", "mha_causal_padding",
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void FusedAndExplicitPathsAgree(string name)
    {
        long b = 2, n = 7;
        var x = randn(b, n, Dim);
        var options = new AttentionOptions { KvHeads = 2 };
        bool causal = true;
        BlockInputs inputs = new();
        switch (name)
        {
            case "gqa_causal": break;
            case "gqa_encoder_padding": causal = false; inputs = new() { Mask = Padding(b, n, 3) }; break;
            case "mqa_alibi_padding":
                options = new AttentionOptions { OneKvHead = true };
                var alibi = new AlibiPositionalBias(2, learned: false);
                inputs = new() { Positions = new PositionInputs { Alibi = alibi }, Mask = Padding(b, n, 2) };
                break;
            case "gqa_t5_cached_keys_padding":
                var mem = randn(b, 4, Dim);
                var keyMask = cat(new[] { ones(b, 4, dtype: ScalarType.Bool), Padding(b, n, 2) }, 1);
                keyMask[0, 1] = tensor(false);
                var t5 = new RelativePositionBias(Math.Sqrt(8), causal: true, numBuckets: 8, maxDistance: 16, Heads);
                inputs = new() { Mem = mem, Mask = Padding(b, n, 2), KeyMask = keyMask, Positions = new PositionInputs { T5 = t5 } };
                break;
            case "gqa_mem_kv_padding": causal = false; options = options with { NumMemKv = 3 }; inputs = new() { Mask = Padding(b, n, 2) }; break;
            case "qk_norm_causal": options = new AttentionOptions { QkNorm = true, QkNormDimScale = true }; break;
            case "qk_norm_gqa_attn_mask":
                options = options with { QkNorm = true, QkNormScale = 4 };
                inputs = new() { AttnMask = rand(n, n).gt(0.3).logical_or(eye(n, dtype: ScalarType.Bool)) };
                break;
            case "gqa_cross_context_mask":
                causal = false;
                var contextMask = ones(b, 5, dtype: ScalarType.Bool);
                contextMask[1, TensorIndex.Slice(3, 5)] = tensor(false);
                inputs = new() { Context = randn(b, 5, Dim), ContextMask = contextMask, Mask = Padding(b, n, 1) };
                break;
            case "gqa_dynamic_bias":
                var dynamic = new DynamicPositionBias(4, Heads, 2, logDistance: true, norm: false);
                inputs = new() { Positions = new PositionInputs { Dynamic = dynamic }, Mask = Padding(b, n, 1) };
                break;
            case "mha_causal_padding": options = new AttentionOptions(); inputs = new() { Mask = Padding(b, n, 3) }; break;
            default: throw new ArgumentException(name);
        }
        using var attention = Build(options, causal);
        using var _ = no_grad();

        long keys = options.NumMemKv + (inputs.Context?.shape[1] ?? (inputs.Mem?.shape[1] ?? 0) + n);
        Assert.True(attention.UsesFusedKernel(inputs, keys, ScalarType.Float32));
        var fused = attention.Forward(x, inputs).Output;
        var explicitPath = attention.Forward(x, inputs with { NeedAttention = true });
        Assert.NotNull(explicitPath.PostSoftmaxAttn);
        var diff = (fused - explicitPath.Output).abs().max().item<float>() / explicitPath.Output.abs().max().item<float>();
        Assert.True(diff < 1e-5, $"{name}: fused and explicit differ by {diff:E3} (relative)");
        // A padding query's output is zero under 1.40 (it attends to nothing).
        if (inputs.Mask is { } mask && inputs.Context is null)
            Assert.Equal(0, fused.masked_select(mask.logical_not().unsqueeze(-1)).abs().sum().item<float>());
    }

    [Theory]
    [InlineData("plain", ScalarType.Float32, true)]
    [InlineData("plain", ScalarType.Float64, false)]      // 1.40's float32 softmax: the fused kernel would compute it in float64
    [InlineData("qk_norm", ScalarType.Float64, true)]     // qk-norm keeps the softmax in the model's precision
    [InlineData("sparse_topk_at_least_keys", ScalarType.Float64, true)]
    [InlineData("gqa", ScalarType.Float32, true)]
    [InlineData("gate_value_heads", ScalarType.Float32, true)]
    [InlineData("softclamp_logits", ScalarType.Float32, false)]
    [InlineData("pre_talking_heads", ScalarType.Float32, false)]
    [InlineData("post_talking_heads", ScalarType.Float32, false)]
    public void FusedKernelRunsWherever140AllowsIt(string option, ScalarType dtype, bool fused)
    {
        var o = option switch
        {
            "plain" => new AttentionOptions(),
            "qk_norm" => new AttentionOptions { QkNorm = true },
            "sparse_topk_at_least_keys" => new AttentionOptions { SparseTopk = 8 },
            "gqa" => new AttentionOptions { KvHeads = 2 },
            "gate_value_heads" => new AttentionOptions { GateValueHeads = true },
            "softclamp_logits" => new AttentionOptions { SoftclampLogits = true },
            "pre_talking_heads" => new AttentionOptions { PreTalkingHeads = true },
            "post_talking_heads" => new AttentionOptions { PostTalkingHeads = true },
            _ => throw new ArgumentException(option),
        };
        using var attention = Build(o, dtype: dtype);
        Assert.Equal(fused, attention.UsesFusedKernel(new BlockInputs(), keys: 8, dtype));
    }

    [Fact]
    public void GroupedHeadsShareKeysAsRepeatedHeadsWould()
    {
        // Query head h reads key/value head h % kv_heads (x-transformers' repeat order): a multi-head attention whose
        // key and value projections repeat the grouped ones in that order gives the same output, on both paths.
        using var gqa = Build(new AttentionOptions { KvHeads = 2 });
        using var mha = Build(new AttentionOptions());
        using var _ = no_grad();
        foreach (var name in new[] { "to_q.weight", "to_out.weight" })
            mha.get_parameter(name)!.copy_(gqa.get_parameter(name)!);
        foreach (var name in new[] { "to_k.weight", "to_v.weight" })
        {
            var grouped = gqa.get_parameter(name)!.reshape(2, 8, Dim);                    // [kv_heads, d, dim]
            mha.get_parameter(name)!.copy_(grouped.repeat(2, 1, 1).reshape(Heads * 8, Dim));  // heads in (r, g) order
        }
        var x = randn(2, 6, Dim);
        foreach (var need in new[] { false, true })
        {
            var inputs = new BlockInputs { NeedAttention = need };
            var diff = (gqa.Forward(x, inputs).Output - mha.Forward(x, inputs).Output).abs().max().item<float>();
            Assert.True(diff < 1e-6, $"NeedAttention={need}: {diff}");
        }
    }
}
