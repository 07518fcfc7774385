using TorchSharp;
using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Runtime;
using TransformerForge.Training;

namespace TransformerForge.Tests.Models;

/// <summary>
/// <see cref="ModelSize"/> counts a configuration's parameters without building it: the count must equal the built
/// model's for every fixture configuration (each exercises an option) and the Feedback Transformer, and absurd sizes
/// are refused with an estimate before anything is allocated.
/// </summary>
public class ModelSizeTests
{
    public static TheoryData<string> Cases() => TestPaths.XTransformersCases();

    static long Built(ModelConfig config)
    {
        using var model = ModelFactory.Create(config);
        return ParameterGroups.Unique(model).Sum(p => p.Parameter.NumberOfElements);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CountEqualsTheBuiltModelForEveryFixture(string name)
    {
        using var doc = StrictJson.ParseFile(TestPaths.Fixture("xtransformers", name, "case.json"));
        var config = ModelConfig.FromJson(doc.RootElement.GetProperty("model"));
        Assert.Equal(Built(config), ModelSize.ParameterCount(config));
    }

    public static TheoryData<string> Variants() => new()
    {
        """{"type": "FeedbackTransformer", "num_tokens": 13, "dim": 16, "depth": 3, "heads": 4, "max_seq_len": 9}""",
        """{"type": "FeedbackTransformer", "num_tokens": 13, "dim": 16, "depth": 2, "heads": 2, "d_ff": 24, "shared_kv": true}""",
        // Options no fixture combines: GLU with post-activation norm, gated residuals, macaron with cross-attention,
        // PAR ordering, custom layers, learned ALiBi on some heads, collaborative heads with value gates.
        """{"type": "TransformerWrapper", "num_tokens": 9, "max_seq_len": 8, "emb_dim": 6, "num_memory_tokens": 2, "attn_layers": {"type": "Decoder", "dim": 8, "depth": 2, "heads": 2, "attn_dim_head": 4, "ff_glu": true, "ff_post_act_ln": true, "gate_residual": true, "scale_residual": true, "ff_mult": 2.5}}""",
        """{"type": "AttentionLayers", "dim": 8, "depth": 3, "heads": 2, "causal": true, "cross_attend": true, "macaron": true, "par_ratio": 4, "attn_dim_head": 4}""",
        """{"type": "Decoder", "dim": 8, "depth": 2, "heads": 2, "custom_layers": ["a", "f", "f", "a"], "alibi_pos_bias": true, "alibi_learned": true, "alibi_num_heads": 1, "attn_dim_head": 4}""",
        """{"type": "Encoder", "dim": 8, "depth": 2, "heads": 4, "attn_collab_heads": true, "attn_collab_compression": 0.25, "attn_gate_values": true, "attn_num_mem_kv": 3, "use_rmsnorm": true, "sandwich_norm": true}""",
        """{"type": "TransformerWrapper", "num_tokens": 11, "max_seq_len": 8, "attn_layers": {"type": "Decoder", "dim": 16, "depth": 2, "heads": 2, "primer_ez": true, "attn_dconv_shared_heads": true, "attn_dconv_kernel_size": 5}}""",
        // Transformer++: every mixer, layers that differ, both layouts (GPT-2 has positions and no lm_head bias).
        """{"type": "TransformerPlusPlus", "num_tokens": 13, "max_seq_len": 20, "dim": 24, "heads": 4, "ff_inner_dim": 40, "mixers": {"mha": 1, "sgconv": 1, "sgconv3": 2}, "sgconv_kernel_size": 3, "sgconv3_kernel_size": 6, "layers": [{}, {"heads": 6, "ff_inner_dim": 16, "mixers": {"sep_conv1d": 2, "local_attn": 2, "lsh_attn": 2}, "sep_conv1d_kernel_size": 3, "local_attn_window_size": 4, "lsh_num_hashes": 2, "lsh_bucket_size": 4}]}""",
        """{"type": "TransformerPlusPlus", "num_tokens": 13, "max_seq_len": 16, "dim": 16, "depth": 2, "block": "gpt2", "heads": 2, "ff_inner_dim": 24, "mixers": {"mha": 1, "sgconv3": 1}, "sgconv3_kernel_size": 5}""",
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void CountEqualsTheBuiltModelForOtherTypesAndCombinations(string json)
    {
        var config = ModelConfig.Parse(json);
        Assert.Equal(Built(config), ModelSize.ParameterCount(config));
    }

    [Fact]
    public void PresetsAreCountedToo()
    {
        foreach (var preset in ModelPresets.Names)
        {
            var config = ModelPresets.Create(preset, 50, 24, 32, 2, 4);
            Assert.Equal(Built(config), ModelSize.ParameterCount(config));
        }
    }

    /// <summary>depth 2^31 - 1 used to allocate 4 GB while parsing (the layer list); now it parses at once and is refused with an estimate.</summary>
    [Fact]
    public void HugeDepthParsesWithoutAllocatingAndIsRefusedWithAnEstimate()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var config = ModelConfig.Parse("""{"type": "TransformerWrapper", "num_tokens": 16, "max_seq_len": 16, "attn_layers": {"type": "Decoder", "dim": 16, "depth": 2147483647, "heads": 2}}""");
        var estimate = ModelSize.ForTraining(config, 8, 16);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "parsing and estimating allocated more than 1 MB");
        Assert.True(estimate.ParameterCount > 2147483647L * 1000);

        var e = Assert.Throws<MemoryLimitException>(() => MemoryGuard.EnsureFits(estimate, 16L << 30, "test memory", "training"));
        Assert.StartsWith("training needs about ", e.Message);
        Assert.Contains("parameters", e.Message);
        Assert.Contains("16 GiB is available (test memory)", e.Message);
    }

    [Fact]
    public void ModelFactoryRefusesAModelLargerThanMemoryBeforeAllocating()
    {
        var config = ModelConfig.Parse("""{"type": "TransformerWrapper", "num_tokens": 2000000000, "max_seq_len": 16, "attn_layers": {"type": "Decoder", "dim": 4096, "depth": 1, "heads": 2}}""");
        var e = Assert.Throws<MemoryLimitException>(() => ModelFactory.Create(config));
        Assert.Contains("building the model needs about", e.Message);
        Assert.True(e.Estimate.ParameterBytes > 30_000_000_000_000L);
    }

    [Fact]
    public void SizesThatOverflowSixtyFourBitsAreAConfigError()
    {
        var config = ModelConfig.Parse("""{"type": "Decoder", "dim": 2147483647, "depth": 2147483647, "heads": 1, "attn_dim_head": 1, "ff_mult": 0.5}""");
        var e = Assert.Throws<ConfigException>(() => ModelSize.ParameterCount(config));
        Assert.Contains("overflows 64-bit", e.Message);
    }

    [Fact]
    public void TrainingEstimateGrowsWithBatchAndSequence()
    {
        var config = ModelPresets.Create(ModelPresets.Vanilla, 256, 512, 64, 2, 4);
        var small = ModelSize.ForTraining(config, 8, 128);
        var large = ModelSize.ForTraining(config, 16, 512);
        Assert.Equal(small.ParameterBytes, large.ParameterBytes);
        Assert.Equal(3 * small.ParameterBytes, small.TrainingStateBytes);
        Assert.True(large.ActivationBytes > 8 * small.ActivationBytes, "attention scores grow with the square of the sequence");
    }
}
