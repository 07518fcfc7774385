using System.Text.Json;
using System.Text.Json.Nodes;
using TransformerForge.Config;

namespace TransformerForge.Tests.Config;

/// <summary>
/// The native Transformer++ JSON: every refusal with its exact key and message, the values just inside each bound, the
/// key naming of <see cref="TransformerPlusPlusConfig.Validate()"/> for configs built in C#, and the per-layer LSH seed.
/// </summary>
public class TransformerPlusPlusValidationTests
{
    /// <summary>Two identical layers of 4 mha heads (the uniform form: layer errors name the bare key).</summary>
    const string Uniform = """
        { "type": "TransformerPlusPlus", "num_tokens": 64, "max_seq_len": 16, "dim": 32, "depth": 2,
          "heads": 4, "ff_inner_dim": 64, "mixers": { "mha": 4 } }
        """;

    static string With(params (string Path, string? Value)[] edits) => ArchaiArchitectureReadingTests.With(Uniform, edits);

    static TransformerPlusPlusConfig Load(params (string, string?)[] edits) =>
        Assert.IsType<TransformerPlusPlusConfig>(ModelConfig.Parse(With(edits)));

    static void AssertRefused(string json, string key, string problem)
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));
        Assert.Equal((key, problem), (e.Key, e.Problem));
    }

    public static TheoryData<string, string?, string, string> Refusals() => new()
    {
        { "num_tokens", null, "num_tokens", "is required" },
        { "max_seq_len", null, "max_seq_len", "is required" },
        { "dim", null, "dim", "is required" },
        { "num_tokens", "0", "num_tokens", "must be a positive integer" },
        { "num_tokens", "-1", "num_tokens", "must be a positive integer" },
        { "max_seq_len", "0", "max_seq_len", "must be a positive integer" },
        { "dim", "0", "dim", "must be a positive integer" },
        { "block", "5", "block", "expected one of codegen, gpt2, got the number 5" },
        { "rotary_dim", "3", "rotary_dim", "must be an even number ≥ 0, got 3" },
        { "rotary_dim", "-2", "rotary_dim", "must be an even number ≥ 0, got -2" },
        { "emb_dropout", "1", "emb_dropout", "must be in [0, 1)" },
        { "emb_dropout", "-0.1", "emb_dropout", "must be in [0, 1)" },
        { "resid_dropout", "1", "resid_dropout", "must be in [0, 1)" },
        { "resid_dropout", "-0.1", "resid_dropout", "must be in [0, 1)" },
        { "layer_norm_eps", "0", "layer_norm_eps", "must be positive" },
        { "layer_norm_eps", "-1", "layer_norm_eps", "must be positive" },
        { "layers", "[5]", "layers[0]", "expected an object, got the number 5" },
        { "depth", null, "depth", "is required (or give 'layers', one object per layer)" },
        { "depth", "0", "depth", "must be between 1 and 10000, got 0" },
        { "depth", "10001", "depth", "must be between 1 and 10000, got 10001" },
        { "heads", "0", "heads", "must be a positive integer" },
        { "heads", "-4", "heads", "must be a positive integer" },
        { "ff_inner_dim", "0", "ff_inner_dim", "must be a positive integer" },
        { "mixers", null, "mixers", "is required: heads per mixer, e.g. {\"mha\": 2, \"sgconv\": 2}" },
        { "mixers", "[1]", "mixers", "expected an object of heads per mixer, e.g. {\"mha\": 2, \"sgconv\": 2}, got a list" },
        { "mixers", "{ \"mha\": 2, \"sep_conv1d\": 2 }", "sep_conv1d_kernel_size", "is required by the sep_conv1d mixer" },
        { "mixers", "{ \"mha\": 2, \"sgconv3\": 2 }", "sgconv3_kernel_size", "is required by the sgconv3 mixer" },
        { "mixers", "{ \"mha\": 2, \"local_attn\": 2 }", "local_attn_window_size", "is required by the local_attn mixer" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void RefusalsNameTheKey(string path, string? value, string key, string problem) =>
        AssertRefused(With((path, value)), key, problem);

    [Fact]
    public void MixerSizesAreCheckedWhereTheMixerIsUsed()
    {
        AssertRefused(With(("mixers", """{ "mha": 5, "sgconv": -1 }"""), ("sgconv_kernel_size", "8")), "mixers.sgconv", "must be at least 1 head, got -1");
        AssertRefused(With(("mixers", """{ "mha": 2, "sep_conv1d": 2 }"""), ("sep_conv1d_kernel_size", "0")), "sep_conv1d_kernel_size", "must be a positive integer, got 0");
        AssertRefused(With(("mixers", """{ "mha": 2, "local_attn": 2 }"""), ("local_attn_window_size", "0")), "local_attn_window_size", "must be a positive integer, got 0");
        AssertRefused(With(("mixers", """{ "mha": 2, "lsh_attn": 2 }"""), ("lsh_bucket_size", "4")), "lsh_num_hashes", "is required by the lsh_attn mixer");
        AssertRefused(With(("mixers", """{ "mha": 2, "lsh_attn": 2 }"""), ("lsh_num_hashes", "2")), "lsh_bucket_size", "is required by the lsh_attn mixer");
        AssertRefused(With(("mixers", """{ "mha": 2, "lsh_attn": 2 }"""), ("lsh_num_hashes", "2"), ("lsh_bucket_size", "4"), ("lsh_num_buckets", "0")),
            "lsh_num_buckets", "must be 1 or an even number, got 0");
        // A long convolution's kernel is shorter than twice max_seq_len (16): 31 is the largest.
        AssertRefused(With(("mixers", """{ "mha": 2, "sgconv3": 2 }"""), ("sgconv3_kernel_size", "32")), "sgconv3_kernel_size", "must be a positive integer less than twice max_seq_len, got 32");
        Assert.Equal(31, Load(("mixers", """{ "mha": 2, "sgconv3": 2 }"""), ("sgconv3_kernel_size", "31")).Layers[0].SGConv3KernelSize);
        Assert.Equal(31, Load(("mixers", """{ "mha": 2, "sgconv": 2 }"""), ("sgconv_kernel_size", "31")).Layers[0].SGConvKernelSize);
    }

    [Fact]
    public void ValuesJustInsideTheBoundsLoad()
    {
        Assert.Equal(1, Load(("depth", "1")).Depth);
        Assert.Equal(10_000, Load(("depth", "10000")).Depth);
        var c = Load(("rotary_dim", "0"));
        Assert.Equal((0, 0), (c.RotaryDim!.Value, c.RotaryDimOf(0)));
        Assert.Equal(1, Load(("mixers", """{ "mha": 2, "local_attn": 2 }"""), ("local_attn_window_size", "1")).Layers[0].LocalAttnWindowSize);
        Assert.Equal(1, Load(("mixers", """{ "mha": 2, "sep_conv1d": 2 }"""), ("sep_conv1d_kernel_size", "1")).Layers[0].SepConv1dKernelSize);
        foreach (var nb in new[] { 1, 2 })
            Assert.Equal(nb, Load(("mixers", """{ "mha": 2, "lsh_attn": 2 }"""), ("lsh_num_hashes", "2"), ("lsh_bucket_size", "4"), ("lsh_num_buckets", $"{nb}")).Layers[0].LshNumBuckets);
    }

    /// <summary>An empty <c>layers</c> list agrees with <c>depth</c> 0 but is still no model.</summary>
    [Fact]
    public void NoLayersIsRefused() => AssertRefused(With(("depth", "0"), ("layers", "[]")), "depth", "must be at least 1");

    /// <summary>A config built in C# without layers still saves (depth 0, an empty list), and reading it back names depth.</summary>
    [Fact]
    public void ALayerlessConfigSavesAndIsRefusedOnReading()
    {
        var json = new TransformerPlusPlusConfig { NumTokens = 64, MaxSeqLen = 16, Dim = 32 }.ToJson();
        Assert.Equal(0, json["depth"]!.GetValue<int>());
        Assert.Empty(json["layers"]!.AsArray());
        AssertRefused(json.ToJsonString(), "depth", "must be at least 1");
    }

    /// <summary>
    /// A mixer given twice: <see cref="ModelConfig.Parse(string)"/> refuses it in its strict JSON reader, but
    /// <see cref="ModelConfig.FromJson"/> takes any parsed element, so the reader checks too.
    /// </summary>
    [Fact]
    public void AMixerGivenTwiceIsRefusedFromAnyParsedElement()
    {
        using var doc = JsonDocument.Parse(Uniform.Replace("{ \"mha\": 4 }", "{ \"mha\": 2, \"mha\": 2 }"));
        var e = Assert.Throws<ConfigException>(() => ModelConfig.FromJson(doc.RootElement));
        Assert.Equal(("mixers.mha", "given twice"), (e.Key, e.Problem));
    }

    static readonly TransformerPlusPlusLayer Good = new() { Heads = 4, FfInnerDim = 64, Mixers = [new MixerHeads("mha", 4)] };

    /// <summary>Validate() names the bare key when every layer is one object (a uniform config), else layers[i].key.</summary>
    [Fact]
    public void ValidateNamesTheLayerOnlyWhenLayersDiffer()
    {
        var bad = Good with { Heads = 0 };
        var model = new TransformerPlusPlusConfig { NumTokens = 64, MaxSeqLen = 16, Dim = 32 };
        var shared = Assert.Throws<ConfigException>(() => (model with { Layers = [bad, bad] }).Validate());
        Assert.Equal("heads", shared.Key);
        var distinct = Assert.Throws<ConfigException>(() => (model with { Layers = [Good, bad] }).Validate());
        Assert.Equal("layers[1].heads", distinct.Key);
    }

    /// <summary>Layer i's LSH attention draws its evaluation rotations from lsh_hash_seed + i.</summary>
    [Fact]
    public void EachLayerGetsItsOwnLshSeed()
    {
        var c = new TransformerPlusPlusConfig { NumTokens = 64, MaxSeqLen = 16, Dim = 32, LshHashSeed = 7, Layers = [Good, Good, Good] };
        Assert.Equal([7, 8, 9], Enumerable.Range(0, 3).Select(i => c.MixerOptions(i).LshHashSeed));
    }
}
