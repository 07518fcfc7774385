using System.Text.Json;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Options;

/// <summary>Attention and feed-forward options without a fixture of their own, against a written-out reference computation.</summary>
public class AttentionReferenceTests
{
    [Fact]
    public void ReturnAttnGivesThePostSoftmaxMapsOfTheFixtureModel()
    {
        // decoder_base with its fixture weights (and memories returned, which changes nothing else): the output is the
        // fixture's, and every returned map is the softmax of that layer's scores, recomputed from its q and k.
        var dir = TestPaths.Fixture("xtransformers", "decoder_base");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "case.json")));
        var config = (TransformerWrapperConfig)ModelConfig.FromJson(doc.RootElement.GetProperty("model"));
        using var m = new TransformerWrapper(config with { MaxMemLen = 16 });
        StateDict.Load(m, Path.Combine(dir, "weights.safetensors"));
        m.to(ScalarType.Float64).eval();
        var io = SafeTensorsTorch.Load(Path.Combine(dir, "io.safetensors"));
        var tokens = io["in.x"];

        using var _ = no_grad();
        var o = m.Forward(tokens, returnAttn: true, returnMems: true);
        Assert.True(Build.MaxDiff(o.Output, io["f64.out"]) < 1e-12, "the fixture's model");
        var maps = o.AttentionMaps!;
        Assert.Equal(2, maps.Count);
        var embedded = Reference.TokenEmbedding(m, tokens, absolutePositions: true);
        Assert.True(Build.MaxDiff(o.Mems![0], embedded) < 1e-12);
        for (int layer = 0; layer < 2; layer++)
        {
            var (_, expected) = Reference.SelfAttentionLayer(m, $"attn_layers.layers.{2 * layer}.", o.Mems![layer],
                new AttentionSpec(Heads: 4, DimHead: 64, Causal: true));
            Assert.True(Build.MaxDiff(maps[layer], expected) < 1e-12, $"layer {layer}: {Build.MaxDiff(maps[layer], expected)}");
            Assert.True(Build.MaxDiff(maps[layer].sum(-1), ones(2, 4, 16, dtype: ScalarType.Float64)) < 1e-12, "rows sum to 1");
        }
    }

    static string Stack(string options) =>
        $$"""{ "type": "Decoder", "dim": 32, "depth": 1, "heads": 4, "attn_dim_head": 8, {{options}} }""";

    [Theory]
    [InlineData("\"primer_ez\": true", 3, false)]
    [InlineData("\"attn_dconv\": true", 3, false)]
    [InlineData("\"attn_dconv\": true, \"attn_dconv_kernel_size\": 5", 5, false)]
    [InlineData("\"attn_dconv\": true, \"attn_dconv_shared_heads\": true, \"attn_dconv_kernel_size\": 4", 4, true)]
    [InlineData("\"primer_ez\": true, \"attn_dconv_shared_heads\": true, \"attn_qkv_bias\": true", 3, true)]
    [Proves("AttentionLayers.primer_ez", "AttentionLayers.attn_dconv", "AttentionLayers.attn_dconv_kernel_size",
        "AttentionLayers.attn_dconv_shared_heads", "AttentionLayers.attn_qkv_bias")]
    public void MultiDConvHeadAttentionConvolvesQueriesKeysAndValues(string options, int kernel, bool sharedHeads)
    {
        // Primer's MDHA: a causal depth-wise convolution after each of the q, k and v projections.
        var m = Build.Stack(Stack(options + ", \"custom_layers\": [\"a\"]"));
        Assert.Equal(options.Contains("attn_qkv_bias"), Weights.Has(m, "layers.0.1.to_q.bias"));
        var x = Build.Randn(1, 2, 10, 32);
        var (output, maps) = Build.RunWithAttention(m, x);
        var spec = new AttentionSpec(Heads: 4, DimHead: 8, Causal: true, DConvKernel: kernel, DConvSharedHeads: sharedHeads);
        var (expected, expectedMap) = Reference.SelfAttentionLayer(m, "layers.0.", x, spec);
        Assert.True(Build.MaxDiff(maps[0], expectedMap) < 1e-12);
        Assert.True(Build.MaxDiff(output, expected) < 1e-12, $"max diff {Build.MaxDiff(output, expected)}");
        using (no_grad()) Assert.True(Build.MaxDiff(Build.Run(m, x), expected) < 1e-12, "the fused path too");
    }

    static Tensor FeedForwardReference(nn.Module m, Tensor x, bool reluSquared)
    {
        Tensor P(string name) => Weights.Param(m, "layers.0." + name);
        var h = Reference.LayerNorm(x, P("0.weight"), P("0.bias")).matmul(P("1.net.0.0.weight").t()) + P("1.net.0.0.bias");
        h = reluSquared ? nn.functional.relu(h).square() : nn.functional.gelu(h);
        return x + h.matmul(P("1.net.3.weight").t()) + P("1.net.3.bias");
    }

    [Theory]
    [InlineData("\"ff_mult\": 2.5", 80, false)]
    [InlineData("\"ff_mult\": 1", 32, false)]
    [InlineData("\"primer_ez\": true", 128, true)]
    [Proves("AttentionLayers.ff_mult", "AttentionLayers.primer_ez")]
    public void FeedForwardWidthAndActivation(string options, int hidden, bool reluSquared)
    {
        // x + W2 act(W1 norm(x) + b1) + b2 with int(dim · ff_mult) hidden units; primer_ez's activation is ReLU².
        var m = Build.Stack(Stack(options + ", \"custom_layers\": [\"f\"]"));
        Assert.Equal(new long[] { hidden, 32 }, Weights.Param(m, "layers.0.1.net.0.0.weight").shape);
        var x = Build.Randn(2, 2, 6, 32);
        using var _ = no_grad();
        Assert.True(Build.MaxDiff(Build.Run(m, x), FeedForwardReference(m, x, reluSquared)) < 1e-12);
    }

    [Fact]
    [Proves("AttentionLayers.primer_ez")]
    public void PrimerEzIsDConvPlusReluSquared()
    {
        var primer = Build.Stack(Stack("\"primer_ez\": true"));
        var spelled = Build.Stack(Stack("\"attn_dconv\": true, \"ff_relu_squared\": true"), perturbSeed: null);
        Weights.Copy(primer, spelled);
        var x = Build.Randn(3, 2, 9, 32);
        using var _ = no_grad();
        Assert.Equal(0.0, Build.MaxDiff(Build.Run(primer, x), Build.Run(spelled, x)));
    }
}
