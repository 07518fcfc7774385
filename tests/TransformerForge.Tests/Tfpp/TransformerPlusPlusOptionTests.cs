using System.Text.Json.Nodes;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Modules.TokenMixers;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Tfpp;

/// <summary>
/// Every key of the native Transformer++ JSON reaches the model that <see cref="ModelFactory.CreateLanguageModel"/>
/// builds from it: sizes as the built modules' shapes and settings, behaviour keys (layout, rotary features, dropout,
/// norm epsilon, LSH seed) as a change in what the model computes. (Archai's files map onto the same keys; the mixers'
/// arithmetic is checked against Archai's fixtures.)
/// </summary>
public class TransformerPlusPlusOptionTests
{
    const string Json = """
        { "type": "TransformerPlusPlus", "num_tokens": 37, "max_seq_len": 20, "dim": 24, "heads": 4, "ff_inner_dim": 20,
          "mixers": { "mha": 1, "sep_conv1d": 1, "sgconv": 1, "sgconv3": 1 },
          "sep_conv1d_kernel_size": 3, "sgconv_kernel_size": 5, "sgconv3_kernel_size": 7,
          "layers": [ {}, { "heads": 6, "ff_inner_dim": 12, "mixers": { "local_attn": 2, "lsh_attn": 4 },
                            "local_attn_window_size": 6, "lsh_num_hashes": 3, "lsh_bucket_size": 5, "lsh_num_buckets": 4 } ] }
        """;

    static TransformerPlusPlus Build(string json) => Assert.IsType<TransformerPlusPlus>(ModelFactory.CreateLanguageModel(ModelConfig.Parse(json)));

    static string With(string json, Action<JsonObject> change)
    {
        var o = JsonNode.Parse(json)!.AsObject();
        change(o);
        return o.ToJsonString();
    }

    static long[] Shape(nn.Module m, string name) => m.state_dict()[name].shape;

    static T Op<T>(TransformerPlusPlus model, int layer, int op) => Assert.IsType<T>(model.Transformer.Blocks[layer].Attention.Ops[op]);

    [Fact]
    [Proves("TransformerPlusPlus.num_tokens", "TransformerPlusPlus.max_seq_len", "TransformerPlusPlus.dim",
        "TransformerPlusPlusLayer.heads", "TransformerPlusPlusLayer.ff_inner_dim", "TransformerPlusPlusLayer.mixers",
        "TransformerPlusPlusLayer.sep_conv1d_kernel_size", "TransformerPlusPlusLayer.sgconv_kernel_size", "TransformerPlusPlusLayer.sgconv3_kernel_size",
        "TransformerPlusPlusLayer.local_attn_window_size", "TransformerPlusPlusLayer.lsh_num_hashes", "TransformerPlusPlusLayer.lsh_bucket_size",
        "TransformerPlusPlusLayer.lsh_num_buckets")]
    public void SizesReachTheBuiltModules()
    {
        using var model = Build(Json);
        Assert.Equal([37L, 24], Shape(model, "transformer.wte.weight"));
        Assert.Equal([37L, 24], Shape(model, "lm_head.weight"));
        Assert.Equal(20, model.MaxSeqLen);
        using (no_grad())
        {
            Assert.Equal([1L, 20, 37], model.Logits(zeros([1, 20], ScalarType.Int64)).shape);
            Assert.Throws<ArgumentException>(() => model.Logits(zeros([1, 21], ScalarType.Int64)));
        }

        // Layer keys at the top apply to layer 0; layer 1 overrides them.
        Assert.Equal([20L, 24], Shape(model, "transformer.h.0.mlp.fc1.weight"));
        Assert.Equal([12L, 24], Shape(model, "transformer.h.1.mlp.fc1.weight"));
        Assert.Equal([("RotaryMultiHeadAttention", 1, 6), ("SeparableConv1d", 1, 6), ("SGConv", 1, 6), ("SGConv3", 1, 6)],
            model.Transformer.Blocks[0].Attention.Ops.Select(o => (o.GetName(), o.Heads, o.DimHead)));
        Assert.Equal([("LocalAttention", 2, 4), ("LshAttention", 4, 4)],
            model.Transformer.Blocks[1].Attention.Ops.Select(o => (o.GetName(), o.Heads, o.DimHead)));

        Assert.Equal(3, Op<SeparableConv1d>(model, 0, 1).KernelSize);
        Assert.Equal([6L, 1, 3], Shape(model, "transformer.h.0.attn.ops.1.conv.weight"));
        Assert.Equal(5, Op<SGConv>(model, 0, 2).KernelSize);
        Assert.Equal([1L, 6, 5], Shape(model, "transformer.h.0.attn.ops.2.sgconv.kernel_list.0"));
        Assert.Equal(7, Op<SGConv>(model, 0, 3).KernelSize);
        Assert.Equal([1L, 6, 7], Shape(model, "transformer.h.0.attn.ops.3.sgconv.kernel_list_key.0"));
        Assert.Equal(6, Op<LocalAttention>(model, 1, 0).WindowSize);
        var lsh = Op<LshAttention>(model, 1, 1).SelfAttention;
        Assert.Equal((3, 5, 4), (lsh.NumHashes, lsh.ChunkLength, lsh.NumBuckets));
    }

    [Fact]
    [Proves("TransformerPlusPlus.block")]
    public void BlockPicksArchaisLayout()
    {
        using var codegen = Build(Json);
        using var gpt2 = Build(With(Json, o => o["block"] = "gpt2"));
        Assert.All(codegen.Transformer.Blocks, b => Assert.IsType<CodeGenBlock>(b));
        Assert.All(gpt2.Transformer.Blocks, b => Assert.IsType<Gpt2Block>(b));
        Assert.Equal([20L, 24], Shape(gpt2, "transformer.wpe.weight"));
        Assert.DoesNotContain("transformer.wpe.weight", codegen.state_dict().Keys);
    }

    [Fact]
    [Proves("TransformerPlusPlus.rotary_dim")]
    public void RotaryDimSetsTheRotatedFeaturesOfMha()
    {
        using var byDefault = Perturbed(Json);
        using var two = Build(With(Json, o => o["rotary_dim"] = 2));
        Assert.Equal(6, Op<RotaryMultiHeadAttention>(byDefault, 0, 0).RotaryDim);   // CodeGen's 64, capped at the head size
        Assert.Equal(2, Op<RotaryMultiHeadAttention>(two, 0, 0).RotaryDim);
        // And the rotation is applied: the same weights with rotary on 2 vs. 6 features give different logits.
        AssertDiffer(byDefault, two, train: false);
    }

    [Fact]
    [Proves("TransformerPlusPlus.layer_norm_eps")]
    public void LayerNormEpsReachesTheNorms()
    {
        using var a = Perturbed(Json);
        using var b = Build(With(Json, o => o["layer_norm_eps"] = 10.0));
        AssertDiffer(a, b, train: false);
    }

    [Fact]
    [Proves("TransformerPlusPlus.lsh_hash_seed")]
    public void LshHashSeedPicksTheEvaluationRotations()
    {
        using var a = Perturbed(Json);
        using var again = Build(Json);
        using var other = Build(With(Json, o => o["lsh_hash_seed"] = 5));
        AssertSame(a, again);
        AssertDiffer(a, other, train: false);
    }

    /// <summary>In training mode each dropout key alone makes the logits differ from evaluation's; with both 0 they are equal.
    /// (Dropout is the only randomness: the model has no LSH layer here, whose training rotations are random too.)</summary>
    [Theory]
    [InlineData("codegen")]
    [InlineData("gpt2")]
    [Proves("TransformerPlusPlus.emb_dropout", "TransformerPlusPlus.resid_dropout")]
    public void DropoutKeysDropInTraining(string block)
    {
        var json = With(Json, o => { o["block"] = block; o.Remove("layers"); o["depth"] = 2; });
        using (var none = Build(json)) Assert.Equal(0, TrainMinusEval(none));
        using (var emb = Build(With(json, o => o["emb_dropout"] = 0.5))) Assert.True(TrainMinusEval(emb) > 1e-3);
        using (var resid = Build(With(json, o => o["resid_dropout"] = 0.5))) Assert.True(TrainMinusEval(resid) > 1e-3);
    }

    static readonly Tensor Tokens = tensor(new long[] { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3 }).view(2, 8);

    static double TrainMinusEval(TransformerPlusPlus model)
    {
        TfppFixtures.Perturb(model);
        using var _ = no_grad();
        model.eval();
        var eval = model.Logits(Tokens);
        model.train();
        return TfppFixtures.MaxAbs(model.Logits(Tokens), eval);
    }

    /// <summary>The model of <paramref name="json"/>, every parameter perturbed by N(0, 0.1), not yet run (SGConv fixes its
    /// kernel norm at the first forward, so a model is perturbed once, before any).</summary>
    static TransformerPlusPlus Perturbed(string json)
    {
        var model = Build(json);
        TfppFixtures.Perturb(model);
        return model;
    }

    /// <summary>Copies <paramref name="a"/>'s parameters into <paramref name="b"/> and returns both models' logits.</summary>
    static (Tensor A, Tensor B) Logits(TransformerPlusPlus a, TransformerPlusPlus b, bool train)
    {
        using var _ = no_grad();
        var from = a.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in b.named_parameters()) p.copy_(from[name]);
        a.train(train);
        b.train(train);
        return (a.Logits(Tokens), b.Logits(Tokens));
    }

    static void AssertDiffer(TransformerPlusPlus a, TransformerPlusPlus b, bool train)
    {
        var (x, y) = Logits(a, b, train);
        Assert.True(TfppFixtures.MaxAbs(x, y) > 1e-4, "the option must change the logits");
    }

    static void AssertSame(TransformerPlusPlus a, TransformerPlusPlus b)
    {
        var (x, y) = Logits(a, b, train: false);
        Assert.Equal(0, TfppFixtures.MaxAbs(x, y));
    }
}
