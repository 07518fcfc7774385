using TorchSharp;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Options;

/// <summary><c>scale_residual</c>: the residual stream is multiplied by a learned per-feature scale before the join (x-transformers 0.20's Residual and GRUGating).</summary>
public class ResidualTests
{
    static string Json(string layer, bool scale, string extra = "") =>
        $$"""{ "type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "attn_dim_head": 8, "custom_layers": ["{{layer}}"], "scale_residual": {{(scale ? "true" : "false")}}{{extra}} }""";

    [Theory]
    [InlineData("a")]
    [InlineData("f")]
    [Proves("AttentionLayers.scale_residual")]
    public void ScalesTheResidualOfAnAdditiveJoin(string layer)
    {
        // out = branch(norm(x)) + s ⊙ x, and without the scale branch(norm(x)) + x: the two differ by exactly (s - 1) ⊙ x.
        var scaled = Build.Stack(Json(layer, true));
        var plain = Build.Stack(Json(layer, false), perturbSeed: null);
        Weights.CopyShared(scaled, plain);
        var s = Weights.Param(scaled, "layers.0.2.residual_scale");
        Assert.True(Build.MaxAbs(s - 1) > 0.05, "perturbed scale differs from 1");
        var x = Build.Randn(1, 2, 7, 16);
        using var _ = no_grad();
        var expected = Build.Run(plain, x) + (s - 1) * x;
        Assert.True(Build.MaxDiff(Build.Run(scaled, x), expected) < 1e-12);
    }

    [Fact]
    [Proves("AttentionLayers.scale_residual")]
    public void ScalesTheStateOfAGatedJoin()
    {
        // GRU gating: out = gru(branch, s ⊙ x). With the ReZero gate at 0 the branch is 0 whatever x is, so the scaled
        // stack at x equals the unscaled one at s ⊙ x.
        const string gated = ", \"gate_residual\": true, \"use_rezero\": true";
        var scaled = Build.Stack(Json("f", true, gated));
        var plain = Build.Stack(Json("f", false, gated), perturbSeed: null);
        Weights.CopyShared(scaled, plain);
        foreach (var m in new[] { scaled, plain }) Weights.Set(m, "layers.0.1.g", zeros(1, dtype: ScalarType.Float64));
        var s = Weights.Param(scaled, "layers.0.2.residual_scale");
        var x = Build.Randn(2, 2, 7, 16);
        using var _ = no_grad();
        Assert.True(Build.MaxDiff(Build.Run(scaled, x), Build.Run(plain, s * x)) < 1e-12);
        Assert.True(Build.MaxDiff(Build.Run(scaled, x), Build.Run(plain, x)) > 1e-3, "the scale matters");
    }
}
