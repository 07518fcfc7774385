using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Modules;
using TransformerForge.Parity;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Labml;

/// <summary>
/// Primer's Multi-DConv-Head Attention as <see cref="Attention"/> runs it, in both kernel layouts (labml's kernels
/// shared by heads, the paper's one per channel), with labml's biased projections: incremental decoding equals the full
/// forward with perturbed weights, the layouts have the shapes they claim and agree when the kernels agree.
/// </summary>
public class PrimerAttentionTests(ITestOutputHelper output)
{
    static AttentionOptions Options(bool sharedHeads, bool qkvBias = true) =>
        new() { DimHead = 4, Dconv = true, DconvSharedHeads = sharedHeads, QkvBias = qkvBias };

    /// <summary>N(0, 0.1) added to every parameter, as the fixtures do: no bias or kernel stays at its initial value.</summary>
    static void Perturb(nn.Module m) => TransformerForge.Tests.Support.Weights.Perturb(m);

    [Theory]
    [InlineData(true, 1)]
    [InlineData(true, 3)]
    [InlineData(false, 1)]
    [InlineData(false, 4)]
    public void CachedStepsEqualFullForward(bool sharedHeads, int chunk)
    {
        manual_seed(7);
        using var attention = new Attention(16, 4, causal: true, Options(sharedHeads));
        attention.to(ScalarType.Float64).eval();
        Perturb(attention);
        using var _ = no_grad();
        var x = randn(2, 11, 16, dtype: ScalarType.Float64);

        var full = attention.Forward(x, new BlockInputs()).Output;

        using var cache = new LayerCache();
        var pieces = new List<Tensor>();
        for (long start = 0; start < x.shape[1]; start += chunk)
        {
            var length = Math.Min(chunk, x.shape[1] - start);
            pieces.Add(attention.Forward(x.narrow(1, start, length), new BlockInputs { Cache = cache }).Output);
        }
        var stepped = cat(pieces, dim: 1);

        Assert.Equal(x.shape[1], cache.Length);
        var error = ParityRunner.RelativeError(stepped, full);
        output.WriteLine($"shared heads {sharedHeads}, chunks of {chunk}: max relative error {error:E3}");
        Assert.True(error <= 1e-12, $"cached differs from full forward: {error:E3}");
    }

    [Fact]
    public void LayoutsAndBiasHaveTheirShapes()
    {
        using var shared = new Attention(32, 4, causal: true, Options(sharedHeads: true) with { DimHead = 8 });
        using var perChannel = new Attention(32, 4, causal: true, Options(sharedHeads: false, qkvBias: false) with { DimHead = 8 });
        var sharedShapes = shared.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        var perChannelShapes = perChannel.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        Assert.Equal(new long[] { 8, 1, 3 }, sharedShapes["to_k_dconv.weight"]);
        Assert.Equal(new long[] { 32, 1, 3 }, perChannelShapes["to_k_dconv.weight"]);
        Assert.Equal(new long[] { 32 }, perChannelShapes["to_v_dconv.bias"]);
        foreach (var projection in new[] { "to_q", "to_k", "to_v" })
        {
            Assert.Equal(new long[] { 32 }, sharedShapes[$"{projection}.bias"]);
            Assert.DoesNotContain($"{projection}.bias", perChannelShapes.Keys);
        }
    }

    [Fact]
    public void PerChannelWithKernelsRepeatedPerHeadEqualsSharedByHeads()
    {
        manual_seed(3);
        using var shared = new Attention(16, 4, causal: true, Options(sharedHeads: true));
        using var perChannel = new Attention(16, 4, causal: true, Options(sharedHeads: false));
        shared.to(ScalarType.Float64).eval();
        perChannel.to(ScalarType.Float64).eval();
        Perturb(shared);
        using var _ = no_grad();
        // Feature h·dim_head + i of a projection uses kernel i in the shared layout.
        var weights = shared.state_dict().ToDictionary(
            w => w.Key,
            w => w.Key.Contains("_dconv.") ? w.Value.repeat(w.Value.dim() == 3 ? [4, 1, 1] : [4]) : w.Value);
        perChannel.load_state_dict(weights, strict: true);

        var x = randn(2, 9, 16, dtype: ScalarType.Float64);
        var error = ParityRunner.RelativeError(perChannel.Forward(x, new BlockInputs()).Output, shared.Forward(x, new BlockInputs()).Output);
        Assert.True(error <= 1e-12, $"{error:E3}");
    }

    [Fact]
    public void ConvolutionIsCausal()
    {
        using var _ = no_grad();
        using var conv = new CausalDepthwiseConv1d(channels: 2);
        conv.Weight.copy_(tensor(new float[] { 1, 2, 3, 10, 20, 30 }).view(2, 1, 3));
        conv.Bias.zero_();
        // One sequence of 4 positions, one group, channel 0 = 1,2,3,4 and channel 1 = 0.
        var x = stack([tensor(new float[] { 1, 2, 3, 4 }), zeros(4)], dim: 1).unsqueeze(0);
        var y = conv.forward(x);
        // Position i = 1·x[i-2] + 2·x[i-1] + 3·x[i].
        Assert.Equal(new float[] { 3, 8, 14, 20 }, y[0, .., 0].data<float>().ToArray());
        Assert.Equal(new float[] { 0, 0, 0, 0 }, y[0, .., 1].data<float>().ToArray());
    }

    /// <summary>
    /// The labml fixture through a layer stack built from JSON with <c>primer_ez</c>: labml's weights load into its
    /// first attention block (the block users train) and give labml's outputs. <c>attn_dconv_shared_heads</c> and
    /// <c>attn_qkv_bias</c> are what make the shapes fit.
    /// </summary>
    [Fact]
    [TransformerForge.Tests.Support.Proves("AttentionLayers.attn_qkv_bias")]
    public void LabmlFixtureRunsThroughThePrimerEzBlockOfAJsonDecoder()
    {
        const string json = """
            { "type": "Decoder", "dim": 32, "depth": 1, "heads": 4, "attn_dim_head": 8,
              "primer_ez": true, "attn_dconv_shared_heads": true, "attn_qkv_bias": true }
            """;
        var config = Assert.IsType<AttentionLayersModelConfig>(ModelConfig.Parse(json));
        using var layers = new AttentionLayers(config.Layers);
        var block = Assert.IsType<Attention>(layers.named_modules().Single(m => m.name == "layers.0.1").module);
        Assert.True(block.Causal);

        var dir = TestPaths.Fixture("labml", "primer_mdha");
        var weights = TransformerForge.IO.SafeTensorsTorch.Load(Path.Combine(dir, "weights.safetensors"));
        TransformerForge.IO.StateDict.Load(block, weights.ToDictionary(w => LabmlCases.PrimerName(w.Key), w => w.Value), "primer_mdha");
        block.to(ScalarType.Float64).eval();
        var io = TransformerForge.IO.SafeTensorsTorch.Load(Path.Combine(dir, "io.safetensors"));
        using var _ = no_grad();
        // labml's layout is [seq, batch, d_model].
        var ours = block.Forward(io["in.x"].to_type(ScalarType.Float64).transpose(0, 1), new BlockInputs()).Output.transpose(0, 1);
        var error = ParityRunner.RelativeError(ours, io["f64.out"]);
        output.WriteLine($"primer_mdha through a JSON primer_ez decoder's block: {error:E3}");
        Assert.True(error <= ParityRunner.F64Tolerance, $"{error:E3}");
    }

    [Fact]
    public void LabmlNamesMapOntoAttention()
    {
        Assert.Equal("to_q.weight", LabmlCases.PrimerName("query.0.linear.weight"));
        Assert.Equal("to_v.bias", LabmlCases.PrimerName("value.0.linear.bias"));
        Assert.Equal("to_k_dconv.weight", LabmlCases.PrimerName("key.1.conv.weight"));
        Assert.Equal("to_out.bias", LabmlCases.PrimerName("output.bias"));
        // Every name the fixture's options give Attention is reached from a labml name.
        using var attention = new Attention(32, 4, causal: true, LabmlCases.PrimerOptions(32, 4));
        var labml = new[] { "query", "key", "value" }
            .SelectMany(p => new[] { $"{p}.0.linear.weight", $"{p}.0.linear.bias", $"{p}.1.conv.weight", $"{p}.1.conv.bias" })
            .Concat(new[] { "output.weight", "output.bias" });
        Assert.Equal(attention.state_dict().Keys.Order(), labml.Select(LabmlCases.PrimerName).Order());
    }
}
