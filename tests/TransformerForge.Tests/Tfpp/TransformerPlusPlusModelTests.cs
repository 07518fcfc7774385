using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Modules.TokenMixers;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Tfpp;

/// <summary>How a Transformer++ model is wired and initialised, where Archai's code is the reference.</summary>
public class TransformerPlusPlusModelTests
{
    static TransformerPlusPlusConfig Config(string block) =>
        TfppFixtures.Config(block, TfppFixtures.Layer(2, ("mha", 1), ("sgconv", 1)), TfppFixtures.Layer(2, ("local_attn", 2)));

    static void Zero(Tensor t)
    {
        using var _ = no_grad();
        t.zero_();
    }

    static Tensor Param(nn.Module m, string name) => m.named_parameters().Single(p => p.name == name).parameter;

    /// <summary>CodeGen: x + attn(norm(x)) + mlp(norm(x)) per layer; with every branch's output layer zeroed, the logits
    /// are the final norm of the token embedding, position by position.</summary>
    [Fact]
    public void CodeGenLayersAddBothBranchesToTheResidual()
    {
        using var model = TfppFixtures.Perturbed(Config(TransformerPlusPlusConfig.CodeGen));
        using var _ = no_grad();
        var tokens = randint(0, 40, [2, 9]);
        foreach (var i in new[] { 0, 1 })
            foreach (var name in new[] { $"transformer.h.{i}.attn.out_proj.weight", $"transformer.h.{i}.attn.out_proj.bias", $"transformer.h.{i}.mlp.fc2.weight", $"transformer.h.{i}.mlp.fc2.bias" })
                Zero(Param(model, name));
        var expected = nn.functional.linear(
            nn.functional.layer_norm(Param(model, "transformer.wte.weight").index_select(0, tokens.flatten()).view(2, 9, 24), [24], Param(model, "transformer.ln_f.weight"), Param(model, "transformer.ln_f.bias")),
            Param(model, "lm_head.weight"), Param(model, "lm_head.bias"));
        Assert.True(TfppFixtures.MaxAbs(model.Logits(tokens), expected) < 1e-12);
    }

    /// <summary>GPT-2 (Archai's): the last layer's feed-forward output goes to the final norm without the residual, so with
    /// that output zeroed every position gives the same logits.</summary>
    [Fact]
    public void GptTwoHandsTheLastFeedForwardOutputToTheFinalNorm()
    {
        using var model = TfppFixtures.Perturbed(Config(TransformerPlusPlusConfig.Gpt2));
        using var _ = no_grad();
        var tokens = randint(0, 40, [2, 9]);
        Assert.True(model.Logits(tokens).std(0).max().item<double>() > 1e-3);
        Zero(Param(model, "transformer.h.1.mlp.c_proj.weight"));
        Zero(Param(model, "transformer.h.1.mlp.c_proj.bias"));
        var logits = model.Logits(tokens);
        Assert.True(TfppFixtures.MaxAbs(logits, logits[0, 0].expand_as(logits)) < 1e-12);
    }

    /// <summary>Hugging Face's initialisation: Linear and Embedding weights N(0, 0.02), biases 0; GPT-2's feed-forward
    /// output N(0, 0.02/√(2·depth)); the convolution kernels and D keep their N(0, 1) start.</summary>
    [Fact]
    public void InitialisesAsHuggingFaceDoes()
    {
        manual_seed(1);
        var config = TfppFixtures.Config(TransformerPlusPlusConfig.Gpt2, TfppFixtures.Layer(4, ("mha", 2), ("sgconv", 2))) with { Dim = 128, MaxSeqLen = 64 };
        config = config with { Layers = [config.Layers[0], config.Layers[0], config.Layers[0], config.Layers[0]] };
        using var model = new TransformerPlusPlus(config);
        double Std(string name) => Param(model, name).std().item<float>();
        Assert.InRange(Std("transformer.wte.weight"), 0.018, 0.022);
        Assert.InRange(Std("transformer.h.0.attn.ops.0.Wqkv.weight"), 0.018, 0.022);
        Assert.InRange(Std("transformer.h.0.mlp.c_fc.weight"), 0.018, 0.022);
        Assert.InRange(Std("transformer.h.0.mlp.c_proj.weight"), 0.9 * 0.02 / Math.Sqrt(8), 1.1 * 0.02 / Math.Sqrt(8));
        Assert.Equal(0, Param(model, "transformer.h.0.attn.out_proj.bias").abs().max().item<float>());
        Assert.InRange(Std("transformer.h.0.attn.ops.1.sgconv.kernel_list.0"), 0.8, 1.2);
    }

    /// <summary>SGConv's kernel norm is fixed by the first forward (Archai), not recomputed as the kernel trains.</summary>
    [Fact]
    public void SgconvFixesItsKernelNormAtTheFirstForward()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        var op = new SGConv(16, 4, 2, kernelSize: 4, maxSeqLen: 16);
        var norm = op.named_buffers().Single(b => b.name == "sgconv.kernel_norm").buffer;
        Assert.Equal(1, norm.mean().item<float>());
        var x = randn(1, 10, 16);
        var first = op.forward(x);
        var fixedNorm = norm.clone();
        Assert.NotEqual(1, fixedNorm.mean().item<float>(), 3);
        using (no_grad()) Param(op, "sgconv.kernel_list.0").mul_(3);
        var second = op.forward(x);
        Assert.Equal(0, TfppFixtures.MaxAbs(norm.to_type(ScalarType.Float64), fixedNorm.to_type(ScalarType.Float64)));
        Assert.True(TfppFixtures.MaxAbs(first, second) > 1e-4, "the kernel change must show");
    }

    /// <summary>Archai rounds shares × total_heads with Python's round (half to even) and drops ops left with no heads.</summary>
    [Fact]
    public void ArchaiSharesRoundHalfToEven()
    {
        var heads = MixedAttentionBlock.HeadsFromShares([("mha", 0.25), ("sgconv", 0.75)], 2);
        Assert.Equal([("mha", 0), ("sgconv", 2)], heads);
        var block = MixedAttentionBlock.Create(heads, new TokenMixerOptions { Dim = 16, Heads = 2, SGConvKernelSize = 4, MaxSeqLen = 8 });
        Assert.Equal(["SGConv"], block.Ops.Select(o => o.GetName()));
        Assert.Equal([("a", 2), ("b", 2)], MixedAttentionBlock.HeadsFromShares([("a", 0.625), ("b", 0.375)], 4));   // 2.5 → 2, 1.5 → 2
    }
}
