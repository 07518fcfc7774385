using System.Text.Json;
using System.Text.Json.Nodes;
using TransformerForge.Config;

namespace TransformerForge.Tests.Config;

/// <summary>
/// Archai's ArchConfig files for Transformer++: which objects are read as one, the Hugging Face defaults of each backbone,
/// and every refusal with its exact key path and message (a wrong shape is a <see cref="ConfigException"/>, never an
/// InvalidOperationException from System.Text.Json).
/// </summary>
public class ArchaiArchitectureReadingTests
{
    /// <summary>A one-layer Archai architecture: half mha, half sgconv.</summary>
    const string Minimal = """
        { "backbone": "codegen", "hidden_size": 32, "vocab_size": 64, "n_positions": 16,
          "hidden_layers": { "_config_type": "config_list", "_share_arch": false, "_repeat_times": 1,
            "_configs": { "0": { "total_heads": 4, "op_allocation": [["mha", 0.5], ["sgconv", 0.5]], "d_inner": 64,
                                 "sgconv": { "kernel_size": 8 } } } } }
        """;

    /// <summary><see cref="Minimal"/> with the value at a dotted path replaced by raw JSON (null: the key removed).</summary>
    internal static string With(string json, params (string Path, string? Value)[] edits)
    {
        var root = JsonNode.Parse(json)!.AsObject();
        foreach (var (path, value) in edits)
        {
            var parts = path.Split('.');
            var parent = parts[..^1].Aggregate(root, (o, p) => o[p]!.AsObject());
            if (value is null) parent.Remove(parts[^1]);
            else parent[parts[^1]] = JsonNode.Parse(value);
        }
        return root.ToJsonString();
    }

    static TransformerPlusPlusConfig Load(params (string, string?)[] edits) =>
        Assert.IsType<TransformerPlusPlusConfig>(ModelConfig.Parse(With(Minimal, edits)));

    static void AssertRefused(string json, string key, string problem)
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));
        Assert.Equal((key, problem), (e.Key, e.Problem));
        Assert.Equal($"config key '{key}': {problem}", e.Message);
    }

    [Fact]
    public void OnlyAnObjectWithHiddenLayersAndNoTypeIsAnArchaiArchitecture()
    {
        static bool Matches(string json) => ArchaiArchitecture.Matches(JsonDocument.Parse(json).RootElement);
        Assert.True(Matches(Minimal));
        Assert.False(Matches("""{ "type": "TransformerPlusPlus", "hidden_layers": {} }"""));
        Assert.False(Matches("""{ "type": "TransformerWrapper" }"""));
        Assert.False(Matches("""{ "hidden_size": 32 }"""));
        Assert.False(Matches("[1]"));
        // A native config with a stray hidden_layers is refused as a native config, naming that key.
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(
            """{ "type": "TransformerPlusPlus", "num_tokens": 64, "max_seq_len": 16, "dim": 32, "depth": 1, "heads": 4, "ff_inner_dim": 64, "mixers": { "mha": 4 }, "hidden_layers": {} }"""));
        Assert.Equal("hidden_layers", e.Key);
    }

    [Fact]
    public void CodeGenDefaultsAreHuggingFacesCodeGenConfig()
    {
        var c = Load(("n_positions", null));
        Assert.Equal((2048, 0.0, 0.0, 1e-5), (c.MaxSeqLen, c.EmbDropout, c.ResidDropout, c.LayerNormEps));
        Assert.Null(c.RotaryDim);
    }

    [Fact]
    public void GptTwoDefaultsAreHuggingFacesGptTwoConfig()
    {
        var c = Load(("backbone", "\"gpt2\""), ("n_positions", null));
        Assert.Equal((TransformerPlusPlusConfig.Gpt2, 1024, 0.1, 0.1, 1e-5), (c.Block, c.MaxSeqLen, c.EmbDropout, c.ResidDropout, c.LayerNormEps));
    }

    [Fact]
    public void HuggingFaceKeysAreRead()
    {
        var c = Load(("backbone", "\"gpt2\""), ("n_positions", null), ("max_position_embeddings", "128"), ("embd_pdrop", "0.2"),
            ("resid_pdrop", "0.3"), ("layer_norm_epsilon", "1e-6"), ("rotary_dim", "4"), ("use_cache", "true"));
        Assert.Equal((128, 0.2, 0.3, 1e-6, (int?)4), (c.MaxSeqLen, c.EmbDropout, c.ResidDropout, c.LayerNormEps, c.RotaryDim));
        Assert.Equal(16, Load().MaxSeqLen);
    }

    /// <summary>Archai writes <c>"_config_type": "default"</c> into plain arch configs: accepted at the top and in a per-op object.</summary>
    [Fact]
    public void ConfigTypeDefaultIsAccepted()
    {
        var c = Load(("_config_type", "\"default\""), ("hidden_layers._configs.0.sgconv", """{ "kernel_size": 8, "_config_type": "default" }"""));
        Assert.Equal(8, c.Layers[0].SGConvKernelSize);
    }

    /// <summary>A layer error is reported under the Archai path, and the message names the key once.</summary>
    [Fact]
    public void ValidationErrorsAreRenamedToArchaiPaths() =>
        AssertRefused(With(Minimal, ("hidden_size", "30")), "hidden_layers._configs.0.total_heads", "must divide dim (30), got 4");

    /// <summary>An unknown backbone is reported first, before the layers are read.</summary>
    [Fact]
    public void AnUnknownBackboneIsReportedBeforeTheLayers() =>
        AssertRefused(With(Minimal, ("backbone", "\"llama\""), ("hidden_layers._repeat_times", "0")), "backbone", "expected one of codegen, gpt2, got 'llama'");

    public static TheoryData<string, string?, string, string> Refusals() => new()
    {
        { "_config_type", "\"other\"", "_config_type", "unknown key of an Archai Transformer++ architecture (known: backbone, hidden_size, hidden_layers, vocab_size, n_positions, max_position_embeddings, rotary_dim, embd_pdrop, resid_pdrop, layer_norm_epsilon, use_cache)" },
        { "_config_type", "7", "_config_type", "unknown key of an Archai Transformer++ architecture (known: backbone, hidden_size, hidden_layers, vocab_size, n_positions, max_position_embeddings, rotary_dim, embd_pdrop, resid_pdrop, layer_norm_epsilon, use_cache)" },
        { "use_cache", "1", "use_cache", "expected true or false" },
        { "backbone", "5", "backbone", "expected a string, got the number 5" },
        { "max_position_embeddings", "16", "max_position_embeddings", "given together with n_positions (its Hugging Face alias)" },
        { "hidden_layers", "[]", "hidden_layers", "expected Archai's config_list object, got a list" },
        { "hidden_layers._shared", "true", "hidden_layers._shared", "unknown key of a config_list (known: _config_type, _share_arch, _repeat_times, _configs)" },
        { "hidden_layers._config_type", null, "hidden_layers._config_type", "must be \"config_list\"" },
        { "hidden_layers._config_type", "\"list\"", "hidden_layers._config_type", "must be \"config_list\"" },
        { "hidden_layers._share_arch", "\"no\"", "hidden_layers._share_arch", "expected true or false" },
        { "hidden_layers._repeat_times", "0", "hidden_layers._repeat_times", "must be at least 1, got 0" },
        { "hidden_layers._configs", null, "hidden_layers._configs", "is required: an object of layer configs \"0\", \"1\", ..." },
        { "hidden_layers._configs", "[{}]", "hidden_layers._configs", "is required: an object of layer configs \"0\", \"1\", ..." },
        { "hidden_layers._configs.0", "5", "hidden_layers._configs.0", "expected an object, got the number 5" },
        { "hidden_layers._configs.0.op_allocation", null, "hidden_layers._configs.0.op_allocation", "is required" },
        { "hidden_layers._configs.0.op_allocation", "{}", "hidden_layers._configs.0.op_allocation", "expected a list of [op, share] pairs, got an object" },
        { "hidden_layers._configs.0.op_allocation", "[[1, 0.5]]", "hidden_layers._configs.0.op_allocation[0]", "expected an [op, share] pair such as [\"mha\", 0.5]" },
        { "hidden_layers._configs.0.op_allocation", "[[\"mha\", \"half\"]]", "hidden_layers._configs.0.op_allocation[0]", "expected an [op, share] pair such as [\"mha\", 0.5]" },
        { "hidden_layers._configs.0.op_allocation", "[[\"mha\", 1.0, 1]]", "hidden_layers._configs.0.op_allocation[0]", "expected an [op, share] pair such as [\"mha\", 0.5]" },
        { "hidden_layers._configs.0.op_allocation", "[\"mha\"]", "hidden_layers._configs.0.op_allocation[0]", "expected an [op, share] pair such as [\"mha\", 0.5]" },
        { "hidden_layers._configs.0.op_allocation", "[[\"mha\", 0.5], [\"mha\", 0.5]]", "hidden_layers._configs.0.op_allocation[1]", "op 'mha' is allocated twice" },
        { "hidden_layers._configs.0.op_allocation", "[[\"mha\", 1.5], [\"sgconv\", -0.5]]", "hidden_layers._configs.0.op_allocation[1]", "share must be a number ≥ 0, got -0.5" },
        { "hidden_layers._configs.0.sgconv", "16", "hidden_layers._configs.0.sgconv", "expected an object, got the number 16" },
        { "hidden_layers._configs.0.sgconv", "{ \"kernel_size\": 8, \"kind\": \"default\" }", "hidden_layers._configs.0.sgconv.kind", "unknown key of sgconv's arch config (known: kernel_size)" },
        { "hidden_layers._configs.0.sgconv", "{ \"kernel_size\": 8, \"_config_type\": \"other\" }", "hidden_layers._configs.0.sgconv._config_type", "unknown key of sgconv's arch config (known: kernel_size)" },
        { "hidden_layers._configs.0.op_allocation", "[[\"mha\", 0.5], [\"lsh_attn\", 0.5]]", "hidden_layers._configs.0.lsh_attn", "is required: op_allocation gives lsh_attn 2 heads, and lsh_attn needs its arch config (num_hashes, bucket_size)" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void RefusalsNameTheArchaiPath(string path, string? value, string key, string problem) =>
        AssertRefused(With(Minimal, (path, value)), key, problem);

    /// <summary>
    /// A key given twice: <see cref="ModelConfig.Parse(string)"/> refuses it in its strict JSON reader, but
    /// <see cref="ModelConfig.FromJson"/> takes any parsed element (the parity runner, the search space), so the reader checks too.
    /// </summary>
    [Fact]
    public void AKeyGivenTwiceIsRefusedFromAnyParsedElement()
    {
        var json = Minimal.Replace("\"hidden_size\": 32,", "\"hidden_size\": 32, \"hidden_size\": 32,");
        using var doc = JsonDocument.Parse(json);
        var e = Assert.Throws<ConfigException>(() => ModelConfig.FromJson(doc.RootElement));
        Assert.Equal(("hidden_size", "given twice"), (e.Key, e.Problem));
    }
}
