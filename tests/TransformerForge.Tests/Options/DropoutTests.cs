using TorchSharp;
using TransformerForge.Models;
using TransformerForge.Modules;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Options;

/// <summary>
/// Every dropout option: in training mode it zeroes its activations at the configured rate (and scales the kept ones
/// by 1/(1-p)); in eval mode the model equals the same weights with no dropout. The rates are read exactly: either
/// through weights that make the dropped activations visible in the output, or through the exact zeros dropout leaves
/// in a gradient.
/// </summary>
public class DropoutTests
{
    const double P = 0.25;

    /// <summary>Dropout's zeros are Bernoulli(p): the observed rate stays within 6 standard deviations of p.</summary>
    static void AssertRate(long zeros, long total, string what)
    {
        double rate = (double)zeros / total, sd = Math.Sqrt(P * (1 - P) / total);
        Assert.True(Math.Abs(rate - P) <= 6 * sd, $"{what}: {zeros} of {total} dropped ({rate:0.000}), expected {P} ± {6 * sd:0.000}");
    }

    static long Zeros(Tensor t) => t.eq(0).sum().item<long>();

    /// <summary>A model with dropout in eval mode gives exactly what the same weights give with no dropout.</summary>
    static void AssertEvalIgnoresDropout<T>(string withDropout, string without, Func<T, Tensor> run) where T : nn.Module
    {
        var a = Build.Model<T>(withDropout);
        var b = Build.Model<T>(without, perturbSeed: null);
        Weights.Copy(a, b);
        using var _ = no_grad();
        var (ya, yb) = (run(a), run(b));
        Assert.Equal(0.0, Build.MaxDiff(ya, yb));
    }

    // attn_dropout: uniform attention (zero q, k) over one-hot values (v = to_out = identity, ReZero gate 1, no norm),
    // so output - input at [i, f] is exactly the dropped-or-scaled attention weight of query i on key f.
    static string AttnJson(double p) =>
        $$"""{ "type": "Encoder", "dim": 32, "depth": 1, "heads": 2, "attn_dim_head": 16, "custom_layers": ["a"], "use_rezero": true, "attn_dropout": {{p}} }""";

    static AttentionLayers TransparentAttention(double p)
    {
        var m = Build.Stack(AttnJson(p));
        foreach (var (name, t) in m.named_parameters())
        {
            if (name.EndsWith("to_q.weight") || name.EndsWith("to_k.weight") || name.EndsWith("to_out.bias")) Weights.Set(m, name, zeros_like(t));
            else if (name.EndsWith("to_v.weight") || name.EndsWith("to_out.weight")) Weights.Set(m, name, eye(32, dtype: t.dtype));
            else if (name.EndsWith(".g")) Weights.Set(m, name, ones_like(t));
        }
        return m;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // asking for the attention maps takes the explicit (non-fused) path
    [Proves("AttentionLayers.attn_dropout")]
    public void AttentionDropoutDropsAttentionWeights(bool returnAttention)
    {
        var m = TransparentAttention(P);
        var x = eye(32, dtype: ScalarType.Float64).unsqueeze(0).expand(8, -1, -1).contiguous();   // position j holds e_j
        Tensor Weights(bool train)
        {
            m.train(train);
            using var _ = no_grad();
            var y = returnAttention ? Build.RunWithAttention(m, x).Output : Build.Run(m, x);
            return y - x;
        }
        var eval = Weights(false);
        Assert.True(Build.MaxDiff(eval, full_like(eval, 1.0 / 32)) < 1e-15, "eval: uniform attention 1/32");
        var train = Weights(true);
        long dropped = Zeros(train);
        AssertRate(dropped, train.numel(), "attention weights");
        var kept = train.masked_select(train.ne(0));
        Assert.True(Build.MaxDiff(kept, full_like(kept, 1.0 / 32 / (1 - P))) < 1e-15, "kept weights are scaled by 1/(1-p)");
        AssertEvalIgnoresDropout<AttentionLayers>(AttnJson(P), AttnJson(0), s => Build.Run(s, Build.Randn(1, 2, 8, 32)));
    }

    // ff_dropout: constant hidden activations gelu(1) (zero input weights, bias 1), output projection [I 0], ReZero gate 1.
    static string FfJson(double p) =>
        $$"""{ "type": "Encoder", "dim": 32, "depth": 1, "heads": 2, "custom_layers": ["f"], "use_rezero": true, "ff_mult": 2, "ff_dropout": {{p}} }""";

    [Fact]
    [Proves("AttentionLayers.ff_dropout")]
    public void FeedForwardDropoutDropsHiddenActivations()
    {
        var m = Build.Stack(FfJson(P));
        foreach (var (name, t) in m.named_parameters())
        {
            var value = t.shape switch
            {
                [64, 32] => zeros_like(t),
                [64] => ones_like(t),
                [32, 64] => cat(new[] { eye(32, dtype: t.dtype), zeros(32, 32, dtype: t.dtype) }, 1),
                [32] => zeros_like(t),
                [1] => ones_like(t),   // ReZero gate
                _ => throw new InvalidOperationException($"unexpected parameter {name}"),
            };
            Weights.Set(m, name, value);
        }
        var x = zeros(16, 16, 32, dtype: ScalarType.Float64);
        double hidden = nn.functional.gelu(tensor(1.0, dtype: ScalarType.Float64)).item<double>();
        using var _ = no_grad();
        m.eval();
        Assert.True(Build.MaxDiff(Build.Run(m, x), full_like(x, hidden)) < 1e-15);
        m.train();
        var train = Build.Run(m, x);
        AssertRate(Zeros(train), train.numel(), "feed-forward hidden activations");
        var kept = train.masked_select(train.ne(0));
        Assert.True(Build.MaxDiff(kept, full_like(kept, hidden / (1 - P))) < 1e-14);
        AssertEvalIgnoresDropout<AttentionLayers>(FfJson(P), FfJson(0), s => Build.Run(s, Build.Randn(1, 2, 8, 32)));
    }

    /// <summary>Dropout on a sum's input leaves exact zeros in that input's gradient where it dropped.</summary>
    static Tensor GradientOf(nn.Module m, string parameter, Func<Tensor> forward, ulong seed)
    {
        m.zero_grad();
        var y = forward();
        (y * Build.Randn(seed, y.shape)).sum().backward();
        return Weights.Param(m, parameter).grad!.detach().clone();
    }

    static string WrapperJson(double p) =>
        $$"""{ "type": "TransformerWrapper", "num_tokens": 64, "max_seq_len": 64, "emb_dropout": {{p}}, "attn_layers": { "type": "Encoder", "dim": 32, "depth": 1, "heads": 2, "attn_dim_head": 16 } }""";

    [Fact]
    [Proves("TransformerWrapper.emb_dropout")]
    public void TokenEmbeddingDropout()
    {
        var m = Build.Model<TransformerWrapper>(WrapperJson(P));
        var tokens = randperm(64, dtype: ScalarType.Int64).unsqueeze(0);   // each token once: its gradient row is its position's
        m.eval();
        Assert.Equal(0, Zeros(GradientOf(m, "token_emb.weight", () => m.forward(tokens), 3)));
        m.train();
        var grad = GradientOf(m, "token_emb.weight", () => m.forward(tokens), 3);
        AssertRate(Zeros(grad), grad.numel(), "token embeddings");
        AssertEvalIgnoresDropout<TransformerWrapper>(WrapperJson(P), WrapperJson(0), w => w.forward(tokens));
    }

    static string ContinuousJson(double p) =>
        $$"""{ "type": "ContinuousTransformerWrapper", "max_seq_len": 64, "emb_dropout": {{p}}, "attn_layers": { "type": "Encoder", "dim": 32, "depth": 1, "heads": 2, "attn_dim_head": 16 } }""";

    [Fact]
    [Proves("ContinuousTransformerWrapper.emb_dropout")]
    public void ContinuousInputDropout()
    {
        var m = Build.Model<ContinuousTransformerWrapper>(ContinuousJson(P));
        var x = Build.Randn(4, 1, 64, 32).requires_grad_();
        Tensor InputGradient(bool train)
        {
            m.train(train);
            x.grad?.zero_();
            var y = m.forward(x);
            (y * Build.Randn(5, y.shape)).sum().backward();
            return x.grad!.detach().clone();
        }
        Assert.Equal(0, Zeros(InputGradient(false)));
        var grad = InputGradient(true);
        AssertRate(Zeros(grad), grad.numel(), "continuous inputs");
        AssertEvalIgnoresDropout<ContinuousTransformerWrapper>(ContinuousJson(P), ContinuousJson(0), w => w.forward(Build.Randn(6, 2, 8, 32)));
    }

    static string VitJson(double dropout, double embDropout) =>
        $$"""{ "type": "ViTransformerWrapper", "image_size": 32, "patch_size": 4, "num_classes": 10, "dropout": {{dropout}}, "emb_dropout": {{embDropout}}, "attn_layers": { "type": "Encoder", "dim": 32, "depth": 1, "heads": 2, "attn_dim_head": 16 } }""";

    [Fact]
    [Proves("ViTransformerWrapper.emb_dropout")]
    public void VisionPatchEmbeddingDropout()
    {
        var m = Build.Model<ViTransformerWrapper>(VitJson(0, P));
        var img = Build.Randn(7, 1, 3, 32, 32);
        m.eval();
        Assert.Equal(0, Zeros(GradientOf(m, "pos_embedding", () => m.forward(img), 8)));
        m.train();
        var grad = GradientOf(m, "pos_embedding", () => m.forward(img), 8);   // [1, 65, 32]: one row per patch and [cls]
        AssertRate(Zeros(grad), grad.numel(), "patch embeddings");
        AssertEvalIgnoresDropout<ViTransformerWrapper>(VitJson(0, P), VitJson(0, 0), v => v.forward(Build.Randn(9, 2, 3, 32, 32)));
    }

    [Fact]
    [Proves("ViTransformerWrapper.dropout")]
    public void VisionHeadDropout()
    {
        var m = Build.Model<ViTransformerWrapper>(VitJson(P, 0));
        // mlp_head: Linear(dim, 4 dim) → GELU → Dropout → Linear(4 dim, classes): a dropped hidden unit zeroes its column
        // of the last layer's gradient (one image per pass, so nothing else can).
        const string last = "mlp_head.net.3.weight";
        m.eval();
        Assert.Equal(0, Zeros(GradientOf(m, last, () => m.forward(Build.Randn(10, 1, 3, 32, 32)), 11)));
        m.train();
        long dropped = 0, total = 0;
        for (ulong pass = 0; pass < 16; pass++)
        {
            var grad = GradientOf(m, last, () => m.forward(Build.Randn(20 + pass, 1, 3, 32, 32)), 40 + pass);
            dropped += grad.eq(0).all(0).sum().item<long>();
            total += grad.shape[1];
        }
        AssertRate(dropped, total, "classification head hidden units");
        AssertEvalIgnoresDropout<ViTransformerWrapper>(VitJson(P, 0), VitJson(0, 0), v => v.forward(Build.Randn(9, 2, 3, 32, 32)));
    }

    static string XJson(double enc, double dec) =>
        $$"""
        { "type": "XTransformer", "dim": 32, "enc_num_tokens": 64, "enc_max_seq_len": 64, "enc_depth": 1, "enc_heads": 2, "enc_attn_dim_head": 16,
          "dec_num_tokens": 64, "dec_max_seq_len": 64, "dec_depth": 1, "dec_heads": 2, "dec_attn_dim_head": 16,
          "enc_emb_dropout": {{enc}}, "dec_emb_dropout": {{dec}} }
        """;

    [Theory]
    [InlineData("encoder.token_emb.weight")]
    [InlineData("decoder.net.token_emb.weight")]
    [Proves("XTransformer.enc_emb_dropout", "XTransformer.dec_emb_dropout")]
    public void EncoderAndDecoderEmbeddingDropout(string embedding)
    {
        bool enc = embedding.StartsWith("encoder");
        var json = XJson(enc ? P : 0, enc ? 0 : P);
        var m = Build.Model<XTransformer>(json);
        var src = randperm(64, dtype: ScalarType.Int64).unsqueeze(0);
        var tgt = cat(new[] { randperm(64, dtype: ScalarType.Int64), tensor(new long[] { 0 }) }).unsqueeze(0);   // inputs: each token once
        m.eval();
        Assert.Equal(0, Zeros(GradientOf(m, embedding, () => m.Loss(src, tgt), 0)));
        m.train();
        var grad = GradientOf(m, embedding, () => m.Loss(src, tgt), 0);
        AssertRate(Zeros(grad), grad.numel(), embedding);
        AssertEvalIgnoresDropout<XTransformer>(json, XJson(0, 0), x => x.Loss(src, tgt));
    }

    static string FeedbackJson(double p) =>
        $$"""{ "type": "FeedbackTransformer", "num_tokens": 16, "dim": 64, "depth": 2, "heads": 4, "d_ff": 64, "dropout": {{p}} }""";

    [Fact]
    [Proves("FeedbackTransformer.dropout")]
    public void FeedbackLayerDropout()
    {
        var m = Build.Model<FeedbackLanguageModel>(FeedbackJson(P));
        // One step (no memory yet): each layer adds dropout(feed_forward(norm(x))) to x, so a dropped output feature
        // zeroes its row of the feed-forward's last weight gradient.
        long dropped = 0, total = 0;
        for (ulong pass = 0; pass < 16; pass++)
        {
            var token = Build.Tokens(pass, 16, 1, 1);
            foreach (var layer in new[] { 0, 1 })
            {
                var name = $"transformer.layers.{layer}.feed_forward.layer2.weight";
                m.eval();
                Assert.Equal(0, GradientOf(m, name, () => m.forward(token), pass).eq(0).all(1).sum().item<long>());
                m.train();
                var grad = GradientOf(m, name, () => m.forward(token), pass);
                dropped += grad.eq(0).all(1).sum().item<long>();
                total += grad.shape[0];
            }
        }
        AssertRate(dropped, total, "feedback layer outputs");
        AssertEvalIgnoresDropout<FeedbackLanguageModel>(FeedbackJson(P), FeedbackJson(0), f => f.forward(Build.Tokens(3, 16, 2, 6)));
    }
}
