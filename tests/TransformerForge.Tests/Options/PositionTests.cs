using TorchSharp;
using TransformerForge.Models;
using TransformerForge.Modules;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Options;

/// <summary>Positional options without a fixture of their own, each against x-transformers 0.20's formula or an equivalence.</summary>
public class PositionTests
{
    /// <summary>Permuting the positions of a position-free encoder permutes its outputs; absolute positions break that.</summary>
    static bool PermutationEquivariant(Func<Tensor, Tensor> model, Tensor input)
    {
        var perm = tensor(new long[] { 3, 0, 5, 1, 7, 2, 6, 4 });
        using var _ = no_grad();
        var permutedOut = model(input.index_select(1, perm));
        var outPermuted = model(input).index_select(1, perm);
        return Build.MaxDiff(permutedOut, outPermuted) < 1e-12;
    }

    const string Encoder = """{ "type": "Encoder", "dim": 16, "depth": 2, "heads": 2, "attn_dim_head": 8 }""";

    [Fact]
    [Proves("TransformerWrapper.use_pos_emb")]
    public void TokenModelWithoutPositionalEmbedding()
    {
        string Json(bool use) => $$"""{ "type": "TransformerWrapper", "num_tokens": 32, "max_seq_len": 16, "use_pos_emb": {{(use ? "true" : "false")}}, "attn_layers": {{Encoder}} }""";
        var without = Build.Model<TransformerWrapper>(Json(false));
        var with = Build.Model<TransformerWrapper>(Json(true));
        Assert.DoesNotContain(without.named_parameters(), p => p.name.StartsWith("pos_emb"));
        var tokens = Build.Tokens(1, 32, 2, 8);
        Assert.True(PermutationEquivariant(t => without.forward(t), tokens));
        Assert.False(PermutationEquivariant(t => with.forward(t), tokens));
    }

    [Fact]
    [Proves("ContinuousTransformerWrapper.use_pos_emb")]
    public void ContinuousModelWithoutPositionalEmbedding()
    {
        string Json(bool use) => $$"""{ "type": "ContinuousTransformerWrapper", "max_seq_len": 16, "dim_in": 5, "use_pos_emb": {{(use ? "true" : "false")}}, "attn_layers": {{Encoder}} }""";
        var without = Build.Model<ContinuousTransformerWrapper>(Json(false));
        var with = Build.Model<ContinuousTransformerWrapper>(Json(true));
        Assert.DoesNotContain(without.named_parameters(), p => p.name.StartsWith("pos_emb"));
        var x = Build.Randn(2, 2, 8, 5);
        Assert.True(PermutationEquivariant(t => without.forward(t), x));
        Assert.False(PermutationEquivariant(t => with.forward(t), x));
    }

    /// <summary>Attention maps of every layer and the input of every attention layer (returned as Transformer-XL memories).</summary>
    static (IReadOnlyList<Tensor> Maps, IReadOnlyList<Tensor> Inputs) Internals(TransformerWrapper m, Tensor tokens, Tensor? attnMask = null)
    {
        using var _ = no_grad();
        var o = m.Forward(tokens, attnMask: attnMask, returnAttn: true, returnMems: true);
        return (o.AttentionMaps!, o.Mems!);
    }

    [Fact]
    [Proves("AttentionLayers.rotary_emb_dim")]
    public void RotaryEmbDimRotatesThatManyFeatures()
    {
        // dim_head 64: 0.20 rotates max(rotary_emb_dim ?? 32, 32) features of q, k (and v).
        var m = Build.Model<TransformerWrapper>("""
            { "type": "TransformerWrapper", "num_tokens": 32, "max_seq_len": 16, "max_mem_len": 16,
              "attn_layers": { "type": "Decoder", "dim": 16, "depth": 2, "heads": 2, "attn_dim_head": 64, "rotary_pos_emb": true, "rotary_emb_dim": 48 } }
            """);
        var tokens = Build.Tokens(2, 32, 2, 12);
        var (maps, inputs) = Internals(m, tokens);
        for (int layer = 0; layer < 2; layer++)
        {
            var spec = new AttentionSpec(Heads: 2, DimHead: 64, Causal: true, RotaryDim: 48);
            var (_, expected) = Reference.SelfAttentionLayer(m, $"attn_layers.layers.{2 * layer}.", inputs[layer], spec);
            Assert.True(Build.MaxDiff(maps[layer], expected) < 1e-12, $"layer {layer}: {Build.MaxDiff(maps[layer], expected)}");
            var (_, default32) = Reference.SelfAttentionLayer(m, $"attn_layers.layers.{2 * layer}.", inputs[layer], spec with { RotaryDim = 32 });
            Assert.True(Build.MaxDiff(maps[layer], default32) > 1e-6, "48 rotated features differ from the default 32");
        }
    }

    [Fact]
    [Proves("AttentionLayers.attn_max_attend_past")]
    public void MaxAttendPastEqualsAnExplicitBandMask()
    {
        string Json(string extra) => $$"""
            { "type": "TransformerWrapper", "num_tokens": 32, "max_seq_len": 16, "max_mem_len": 16,
              "attn_layers": { "type": "Decoder", "dim": 16, "depth": 2, "heads": 2, "attn_dim_head": 8{{extra}} } }
            """;
        var limited = Build.Model<TransformerWrapper>(Json(", \"attn_max_attend_past\": 3"));
        var free = Build.Model<TransformerWrapper>(Json(""), perturbSeed: null);
        Weights.Copy(limited, free);
        var tokens = Build.Tokens(3, 32, 2, 12);

        // Query i sees keys i-3 .. i: the same as an explicit attention mask on the model without the option.
        var band = Reference.Blocked(12, causal: true, maxAttendPast: 3).logical_not();
        using (no_grad())
        {
            var a = limited.forward(tokens);
            Assert.True(Build.MaxDiff(a, free.Forward(tokens, attnMask: band).Output) < 1e-12);
            Assert.True(Build.MaxDiff(a, free.forward(tokens)) > 1e-3, "the limit matters at length 12");
        }
        // And the maps are the reference softmax over that band (zero beyond it).
        var (maps, inputs) = Internals(limited, tokens);
        for (int layer = 0; layer < 2; layer++)
        {
            var (_, expected) = Reference.SelfAttentionLayer(limited, $"attn_layers.layers.{2 * layer}.", inputs[layer],
                new AttentionSpec(Heads: 2, DimHead: 8, Causal: true, MaxAttendPast: 3));
            Assert.True(Build.MaxDiff(maps[layer], expected) < 1e-12);
        }
    }

    /// <summary>With q = 0 in the first layer the scores are the position bias alone: log-attention differences in a row are bias differences.</summary>
    static Func<int, int, int, double> FirstLayerLogits(TransformerWrapper m, Tensor tokens)
    {
        Weights.Set(m, "attn_layers.layers.0.1.to_q.weight", zeros_like(Weights.Param(m, "attn_layers.layers.0.1.to_q.weight")));
        var (maps, _) = Internals(m, tokens);
        var logits = maps[0][0].log().contiguous();   // [h, i, j] of the first sequence; -inf where masked
        long n = logits.shape[1];
        var values = logits.data<double>().ToArray();
        return (h, i, j) => values[(h * n + i) * n + j];
    }

    [Theory]
    [InlineData("Decoder", true)]
    [InlineData("Encoder", false)]
    [Proves("AttentionLayers.rel_pos_num_buckets", "AttentionLayers.rel_pos_max_distance")]
    public void T5BucketsFollowNumBucketsAndMaxDistance(string type, bool causal)
    {
        const int buckets = 8, maxDistance = 16, n = 24, dimHead = 8;
        var m = Build.Model<TransformerWrapper>($$"""
            { "type": "TransformerWrapper", "num_tokens": 32, "max_seq_len": 24, "max_mem_len": 24,
              "attn_layers": { "type": "{{type}}", "dim": 16, "depth": 1, "heads": 2, "attn_dim_head": {{dimHead}},
                               "rel_pos_bias": true, "rel_pos_num_buckets": {{buckets}}, "rel_pos_max_distance": {{maxDistance}} } }
            """);
        // Bias of bucket b for head h: 0.01 · (b + 1) · (h + 1), so each bucket is visible.
        var table = Weights.Param(m, "attn_layers.rel_pos.relative_attention_bias.weight");
        var values = (arange(table.shape[0], dtype: ScalarType.Float64).unsqueeze(1) + 1) * (arange(table.shape[1], dtype: ScalarType.Float64) + 1) * 0.01;
        Weights.Set(m, "attn_layers.rel_pos.relative_attention_bias.weight", values);
        var logits = FirstLayerLogits(m, Build.Tokens(4, 32, 1, n));

        double Bias(int i, int j, int h) => 0.01 * (Reference.T5Bucket(i, j, causal, buckets, maxDistance) + 1) * (h + 1) * Math.Sqrt(dimHead);
        double worst = 0;
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j <= (causal ? i : n - 1); j++)
                {
                    double got = logits(h, i, j) - logits(h, i, i);
                    worst = Math.Max(worst, Math.Abs(got - (Bias(i, j, h) - Bias(i, i, h))));
                }
        Assert.True(worst < 1e-10, $"max error {worst}");
    }

    [Fact]
    [Proves("AttentionLayers.alibi_learned")]
    public void LearnedAlibiSlopesAreTheParameters()
    {
        var m = Build.Model<TransformerWrapper>("""
            { "type": "TransformerWrapper", "num_tokens": 32, "max_seq_len": 16, "max_mem_len": 16,
              "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "heads": 4, "attn_dim_head": 8,
                               "alibi_pos_bias": true, "alibi_num_heads": 2, "alibi_learned": true } }
            """);
        // The perturbed parameters, not the geometric slopes, set the bias slope·j (0 for the heads without ALiBi).
        var slopes = Weights.Param(m, "attn_layers.rel_pos.learned_logslopes").exp().flatten();
        var geometric = new[] { Math.Pow(2, -4), Math.Pow(2, -8) };
        Assert.True(Math.Abs(slopes[0].item<double>() - geometric[0]) > 1e-4);
        var logits = FirstLayerLogits(m, Build.Tokens(5, 32, 1, 12));
        double worst = 0;
        for (int h = 0; h < 4; h++)
        {
            double slope = h < 2 ? slopes[h].item<double>() : 0;
            for (int i = 0; i < 12; i++)
                for (int j = 0; j <= i; j++)
                    worst = Math.Max(worst, Math.Abs(logits(h, i, j) - logits(h, i, i) - slope * (j - i)));
        }
        Assert.True(worst < 1e-10, $"max error {worst}");
    }
    [Fact]
    public void PersistentMemoryKeysTakeTheFirstAlibiPositions()
    {
        // 0.20 puts the num_mem_kv learned keys before the others and measures ALiBi over all j keys: bias slope·j,
        // memory keys at 0 and 1; the causal mask hides key c from query r when c > r + num_mem_kv. Its pre-softmax
        // map (returned, and passed on by residual_attn) is the scaled q·kᵀ alone, before bias and masks.
        const int mem = 2, n = 5, heads = 2, dimHead = 8;
        var stack = Build.Stack($$"""
            { "type": "Decoder", "dim": 16, "depth": 1, "heads": {{heads}}, "attn_dim_head": {{dimHead}}, "custom_layers": ["a"],
              "alibi_pos_bias": true, "attn_num_mem_kv": {{mem}} }
            """);
        Tensor P(string name) => Weights.Param(stack, "layers.0." + name);
        var x = Build.Randn(6, 2, n, 16);
        var h = Reference.LayerNorm(x, P("0.weight"), P("0.bias"));
        Tensor Heads(Tensor t) => t.reshape(2, n, heads, dimHead).transpose(1, 2);
        var q = Heads(h.matmul(P("1.to_q.weight").t()));
        var k = cat(new[] { P("1.mem_k").unsqueeze(0).expand(2, -1, -1, -1), Heads(h.matmul(P("1.to_k.weight").t())) }, 2);
        var scores = q.matmul(k.transpose(-1, -2)) * Math.Pow(dimHead, -0.5);            // [b, h, n, mem + n]
        var slopes = tensor(new[] { Math.Pow(2, -4), Math.Pow(2, -8) }).reshape(1, heads, 1, 1);
        var bias = slopes * arange(mem + n, dtype: ScalarType.Float64).reshape(1, 1, 1, mem + n);
        var blocked = arange(mem + n).unsqueeze(0).gt(arange(n).unsqueeze(1) + mem);
        var expected = (scores + bias).masked_fill(blocked, double.NegativeInfinity).softmax(-1);

        BlockOutput attention;
        using (no_grad()) attention = stack.Forward(x, returnAttention: true).Intermediates.Attention[0];
        Assert.True(Build.MaxDiff(attention.PostSoftmaxAttn!, expected) < 1e-12, $"post-softmax: {Build.MaxDiff(attention.PostSoftmaxAttn!, expected)}");
        Assert.True(Build.MaxDiff(attention.PreSoftmaxAttn!, scores) < 1e-12, $"pre-softmax: {Build.MaxDiff(attention.PreSoftmaxAttn!, scores)}");
    }
}
