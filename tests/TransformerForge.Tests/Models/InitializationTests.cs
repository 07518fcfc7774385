using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Models;

/// <summary>Parameters start where x-transformers (and the papers) start them.</summary>
public class InitializationTests
{
    static TransformerWrapper Build(AttentionLayersConfig layers) =>
        new(new TransformerWrapperConfig { NumTokens = 16, MaxSeqLen = 8, AttnLayers = layers with { Dim = 16, Depth = 1, Heads = 2, Attn = layers.Attn with { DimHead = 8 } } });

    static Tensor P(nn.Module m, string name) => m.named_parameters().Single(p => p.name == name).parameter;

    [Fact]
    public void RezeroGatesStartAtZero()
    {
        var m = Build(new AttentionLayersConfig { UseRezero = true });
        Assert.Equal(0f, P(m, "attn_layers.layers.0.1.g").item<float>());
        Assert.Equal(0f, P(m, "attn_layers.layers.1.1.g").item<float>());
        // ReZero replaces the norms: no norm parameters at all inside the stack.
        Assert.DoesNotContain(m.named_parameters(), p => p.name.StartsWith("attn_layers.layers.0.0"));
    }

    [Fact]
    public void ValueGatesStartOpen()
    {
        var m = Build(new AttentionLayersConfig { Attn = new() { GateValues = true } });
        Assert.Equal(0f, P(m, "attn_layers.layers.0.1.to_v_gate.weight").abs().max().item<float>());
        Assert.Equal(1f, P(m, "attn_layers.layers.0.1.to_v_gate.bias").min().item<float>());
    }

    [Fact]
    [Proves("AttentionLayers.zero_init_branch_output")]
    public void ZeroInitBranchOutputZeroesTheOutputProjections()
    {
        var m = Build(new AttentionLayersConfig { ZeroInitBranchOutput = true });
        Assert.Equal(0f, P(m, "attn_layers.layers.0.1.to_out.weight").abs().max().item<float>());
        Assert.Equal(0f, P(m, "attn_layers.layers.1.1.net.3.weight").abs().max().item<float>());
        // x-transformers' init_zero_ zeroes the biases too, so each block starts as the identity.
        Assert.Equal(0f, P(m, "attn_layers.layers.0.1.to_out.bias").abs().max().item<float>());
        Assert.Equal(0f, P(m, "attn_layers.layers.1.1.net.3.bias").abs().max().item<float>());
        var plain = Build(new AttentionLayersConfig());
        Assert.NotEqual(0f, P(plain, "attn_layers.layers.0.1.to_out.weight").abs().max().item<float>());
    }

    [Fact]
    public void ScalesAndNormsStartAtOne()
    {
        var m = Build(new AttentionLayersConfig { Attn = new() { HeadScale = true }, ScaleResidual = true, UseRmsnorm = true });
        Assert.Equal(1f, P(m, "attn_layers.layers.0.1.head_scale_params").min().item<float>());
        Assert.Equal(1f, P(m, "attn_layers.layers.0.2.residual_scale").min().item<float>());
        Assert.Equal(1f, P(m, "attn_layers.layers.0.0.g").min().item<float>());
    }

    [Fact]
    public void LearnedAlibiStartsAtTheGeometricSlopes()
    {
        var m = Build(new AttentionLayersConfig { AlibiPosBias = true, AlibiLearned = true });
        var slopes = P(m, "attn_layers.rel_pos.learned_logslopes").exp().flatten();
        Assert.Equal(new[] { 0.0625, 0.00390625 }, slopes.data<float>().Select(v => Math.Round(v, 8)).ToArray());
    }
}
