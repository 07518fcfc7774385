using System.Text.Json.Nodes;
using TransformerForge.Config;
using TransformerForge.Models;

namespace TransformerForge.Tests.Tfpp;

/// <summary>The Transformer++ JSON: its own form, Archai's ArchConfig files (the architecture search's samples) and the errors of both.</summary>
public class TransformerPlusPlusConfigTests
{
    static string ArchaiExample => File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "docs", "examples", "archai-tfpp.json"));

    const string Native = """
        { "type": "TransformerPlusPlus", "num_tokens": 64, "max_seq_len": 32, "dim": 32, "depth": 3,
          "heads": 4, "ff_inner_dim": 64, "mixers": { "mha": 2, "sgconv": 2 }, "sgconv_kernel_size": 8,
          "layers": [ {}, { "mixers": { "local_attn": 1, "lsh_attn": 3 }, "local_attn_window_size": 4, "lsh_num_hashes": 2, "lsh_bucket_size": 4 },
                      { "heads": 2, "ff_inner_dim": 32, "mixers": { "mha": 1, "sgconv": 1 } } ] }
        """;

    [Fact]
    public void ArchaiFileLoadsAsArchaiBuildsIt()
    {
        var c = Assert.IsType<TransformerPlusPlusConfig>(ModelConfig.Parse(ArchaiExample));
        Assert.Equal(TransformerPlusPlusConfig.CodeGen, c.Block);
        Assert.Equal((256, 64, 32), (c.NumTokens, c.MaxSeqLen, c.Dim));
        // _repeat_times 3: the fourth layer config is not used.
        Assert.Equal(3, c.Depth);
        Assert.Equal([new MixerHeads("mha", 2), new MixerHeads("sgconv", 2)], c.Layers[0].Mixers);
        Assert.Equal(["sep_conv1d", "sgconv3", "local_attn", "lsh_attn"], c.Layers[1].Mixers.Select(m => m.Op));
        Assert.All(c.Layers[1].Mixers, m => Assert.Equal(1, m.Heads));
        Assert.Equal([new MixerHeads("mha", 4)], c.Layers[2].Mixers);
        Assert.All(c.Layers, l => Assert.Equal((4, 64), (l.Heads, l.FfInnerDim)));
        // Per-op sizes are kept for the ops a layer uses, and only those.
        Assert.Equal(16, c.Layers[0].SGConvKernelSize);
        Assert.Null(c.Layers[0].LocalAttnWindowSize);
        var l1 = c.Layers[1];
        Assert.Equal((4, 16, 16, 2, 8), (l1.SepConv1dKernelSize!.Value, l1.SGConv3KernelSize!.Value, l1.LocalAttnWindowSize!.Value, l1.LshNumHashes!.Value, l1.LshBucketSize!.Value));
        Assert.Null(c.Layers[2].SGConvKernelSize);
        // CodeGen's defaults: rotary on 64 features (capped at the head size 8), no dropout.
        Assert.Equal(8, c.RotaryDimOf(0));
        Assert.Equal((0.0, 0.0), (c.EmbDropout, c.ResidDropout));
    }

    [Fact]
    public void ArchaiFileSavesAsTheSameModelInTheNativeForm()
    {
        var archai = (TransformerPlusPlusConfig)ModelConfig.Parse(ArchaiExample);
        var json = archai.ToJsonString();
        var native = (TransformerPlusPlusConfig)ModelConfig.Parse(json);
        Assert.True(JsonNode.DeepEquals(archai.ToJson(), native.ToJson()), json);
        Assert.Equal("TransformerPlusPlus", native.ToJson()["type"]!.GetValue<string>());
        using var a = new TransformerPlusPlus(archai);
        using var b = new TransformerPlusPlus(native);
        Assert.Equal(a.state_dict().Select(p => (p.Key, string.Join(",", p.Value.shape))), b.state_dict().Select(p => (p.Key, string.Join(",", p.Value.shape))));
    }

    [Fact]
    public void GptTwoBackboneTakesGptTwoDefaults()
    {
        var json = ArchaiExample.Replace("\"backbone\": \"codegen\"", "\"backbone\": \"gpt2\"").Replace("    \"n_positions\": 64\n", "    \"resid_pdrop\": 0.0,\n    \"use_cache\": false\n");
        var c = (TransformerPlusPlusConfig)ModelConfig.Parse(json);
        Assert.Equal((TransformerPlusPlusConfig.Gpt2, 1024, 0.1, 0.0), (c.Block, c.MaxSeqLen, c.EmbDropout, c.ResidDropout));
        Assert.Equal(0, c.RotaryDimOf(0));
        using var model = new TransformerPlusPlus(c);
        var names = model.state_dict().Keys.ToList();
        Assert.Contains("transformer.wpe.weight", names);
        Assert.Contains("transformer.h.0.ln2.weight", names);
        Assert.Contains("transformer.h.2.mlp.c_proj.weight", names);
        Assert.DoesNotContain("lm_head.bias", names);
    }

    [Fact]
    public void ParameterNamesAreArchais()
    {
        using var model = new TransformerPlusPlus((TransformerPlusPlusConfig)ModelConfig.Parse(ArchaiExample));
        var names = model.state_dict().Keys.ToHashSet();
        foreach (var name in new[]
        {
            "transformer.wte.weight", "transformer.h.0.norm.weight", "transformer.h.0.attn.ops.0.Wqkv.weight",
            "transformer.h.0.attn.ops.0.rotary_emb.inv_freq", "transformer.h.0.attn.ops.1.in_proj.0.weight",
            "transformer.h.0.attn.ops.1.sgconv.kernel_list.0", "transformer.h.0.attn.ops.1.sgconv.kernel_norm_initialized",
            "transformer.h.0.attn.out_proj.weight", "transformer.h.0.mlp.fc1.weight", "transformer.h.0.mlp.fc2.bias",
            "transformer.h.1.attn.ops.0.conv.weight", "transformer.h.1.attn.ops.1.sgconv.kernel_list_key.0",
            "transformer.h.1.attn.ops.2.to_qkv.weight", "transformer.h.1.attn.ops.3.attn.layer_norm.weight",
            "transformer.h.1.attn.ops.3.attn.self_attention.query_key.weight", "transformer.h.1.attn.ops.3.attn.self_attention.mask_value_float32",
            "transformer.ln_f.weight", "lm_head.weight", "lm_head.bias",
        })
            Assert.Contains(name, names);
        // The evaluation rotations of LSH attention come from the seed, not from the weights file.
        Assert.DoesNotContain(names, n => n.Contains("fixed_rotations"));
    }

    [Fact]
    public void NativeFormReadsDefaultsAndPerLayerOverrides()
    {
        var c = (TransformerPlusPlusConfig)ModelConfig.Parse(Native);
        Assert.Equal(3, c.Depth);
        Assert.Equal([new MixerHeads("mha", 2), new MixerHeads("sgconv", 2)], c.Layers[0].Mixers);
        Assert.Equal([new MixerHeads("local_attn", 1), new MixerHeads("lsh_attn", 3)], c.Layers[1].Mixers);
        Assert.Equal((8, 4, 2, 4), (c.Layers[1].SGConvKernelSize!.Value, c.Layers[1].LocalAttnWindowSize!.Value, c.Layers[1].LshNumHashes!.Value, c.Layers[1].LshBucketSize!.Value));
        Assert.Equal((2, 32), (c.Layers[2].Heads, c.Layers[2].FfInnerDim));
        Assert.Equal([new MixerHeads("mha", 1), new MixerHeads("sgconv", 1)], c.Layers[2].Mixers);
        Assert.Equal(8, c.Layers[2].SGConvKernelSize);
    }

    [Fact]
    public void NativeFormRoundTripsBothShapes()
    {
        var perLayer = ModelConfig.Parse(Native);
        var again = ModelConfig.Parse(perLayer.ToJsonString());
        Assert.True(JsonNode.DeepEquals(perLayer.ToJson(), again.ToJson()));
        Assert.NotNull(perLayer.ToJson()["layers"]);

        const string uniform = """
            { "type": "TransformerPlusPlus", "num_tokens": 64, "max_seq_len": 32, "dim": 32, "depth": 2, "block": "gpt2",
              "heads": 4, "ff_inner_dim": 64, "mixers": { "mha": 2, "sep_conv1d": 2 }, "sep_conv1d_kernel_size": 3, "emb_dropout": 0.1 }
            """;
        var c = ModelConfig.Parse(uniform);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(uniform), c.ToJson()), c.ToJsonString());
    }

    public static TheoryData<string, string, string> NativeErrors() => new()
    {
        { "\"mixers\": { \"mha\": 2, \"sgconv\": 2 }", "\"mixers\": { \"mha\": 2, \"sgconvv\": 2 }", "mixers.sgconvv|unknown mixer 'sgconvv'" },
        { "\"mixers\": { \"mha\": 2, \"sgconv\": 2 }", "\"mixers\": { \"mha\": 3, \"sgconv\": 2 }", "layers[0].mixers|add up to 5 (mha 3, sgconv 2), not the layer's 4 heads" },
        { "\"sgconv_kernel_size\": 8,", "", "layers[0].sgconv_kernel_size|is required by the sgconv mixer" },
        { "\"sgconv_kernel_size\": 8", "\"sgconv_kernel_size\": 64", "layers[0].sgconv_kernel_size|less than twice max_seq_len" },
        { "\"lsh_bucket_size\": 4", "\"lsh_bucket_size\": 4, \"lsh_num_buckets\": 3", "layers[1].lsh_num_buckets|1 or an even number" },
        { "\"depth\": 3", "\"depth\": 4", "depth|is 4 but 'layers' lists 3 layers" },
        { "\"ff_inner_dim\": 32", "\"ff_inner_dimm\": 32", "layers[2].ff_inner_dimm|did you mean 'ff_inner_dim'" },
        { "\"heads\": 4,", "\"heads\": 5,", "layers[0].heads|must divide dim (32)" },
        { "\"dim\": 32,", "\"dim\": 32, \"block\": \"gpt3\",", "block|expected one of codegen, gpt2" },
        { "\"dim\": 32,", "\"dim\": 32, \"x_transformers_version\": \"1.40\",", "x_transformers_version|Transformer++ is Archai's model" },
    };

    [Theory]
    [MemberData(nameof(NativeErrors))]
    public void NativeErrorsNameTheKey(string from, string to, string expected)
    {
        var json = Native;
        Assert.Contains(from, json);
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json.Replace(from, to)));
        var (key, message) = (expected.Split('|')[0], expected.Split('|')[1]);
        Assert.Equal(key, e.Key);
        Assert.Contains(message, e.Message);
    }

    public static TheoryData<string, string, string> ArchaiErrors() => new()
    {
        // An unknown op names the layer and the allocation entry.
        { "[\n                        \"lsh_attn\",\n                        0.25", "[\n                        \"lsh_attention\",\n                        0.25",
          "hidden_layers._configs.1.op_allocation[5]|unknown op 'lsh_attention'" },
        // Shares that do not add up to total_heads.
        { "[\n                        \"sgconv\",\n                        0.5", "[\n                        \"sgconv\",\n                        0.75",
          "hidden_layers._configs.0.op_allocation|round to 5 heads (mha 2, sep_conv1d 0, sgconv 3, sgconv3 0, local_attn 0, lsh_attn 0), not 4" },
        { "\"_repeat_times\": 3", "\"_repeat_times\": 5", "hidden_layers._configs|has no layer \"4\" but _repeat_times is 5" },
        { "\"d_inner\": 64,\n                \"sgconv\"", "\"d_innr\": 64,\n                \"sgconv\"", "hidden_layers._configs.0.d_innr|unknown key of a Transformer++ layer" },
        { "\"window_size\": 16", "\"window\": 16", "hidden_layers._configs.0.local_attn.window|unknown key of local_attn's arch config" },
        { "\"vocab_size\": 256,", "", "vocab_size|is required" },
        { "\"n_positions\": 64", "\"n_positions\": 4", "hidden_layers._configs.0.sgconv.kernel_size|less than twice max_seq_len" },
        { "\"hidden_size\": 32", "\"hidden_size\": 30", "hidden_layers._configs.0.total_heads|must divide dim (30)" },
        { "\"backbone\": \"codegen\"", "\"backbone\": \"llama\"", "backbone|expected one of codegen, gpt2" },
        { "\"n_positions\": 64", "\"n_positions\": 64, \"n_embd\": 32", "n_embd|unknown key of an Archai Transformer++ architecture" },
    };

    [Theory]
    [MemberData(nameof(ArchaiErrors))]
    public void ArchaiErrorsNameTheLayerAndKey(string from, string to, string expected)
    {
        var json = ArchaiExample.ReplaceLineEndings("\n");
        Assert.Contains(from, json);
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json.Replace(from, to)));
        var (key, message) = (expected.Split('|')[0], expected.Split('|')[1]);
        Assert.Equal(key, e.Key);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void AnArchaiOpWithoutItsArchConfigIsAnError()
    {
        var json = JsonNode.Parse(ArchaiExample)!;
        json["hidden_layers"]!["_configs"]!["0"]!.AsObject().Remove("sgconv");
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json.ToJsonString()));
        Assert.Equal("hidden_layers._configs.0.sgconv", e.Key);
        Assert.Contains("op_allocation gives sgconv 2 heads", e.Message);
    }

    /// <summary>One layer is named as a layer too (not as the native top-level key).</summary>
    [Fact]
    public void AOneLayerFileNamesItsLayerInErrors()
    {
        var json = ArchaiExample.ReplaceLineEndings("\n").Replace("\"_repeat_times\": 3", "\"_repeat_times\": 1").Replace("\"n_positions\": 64", "\"n_positions\": 4");
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));
        Assert.Equal("hidden_layers._configs.0.sgconv.kernel_size", e.Key);
    }

    /// <summary>Layers past _repeat_times are not read at all, as in Archai (they may hold anything).</summary>
    [Fact]
    public void LayersPastRepeatTimesAreIgnored()
    {
        var json = JsonNode.Parse(ArchaiExample)!;
        json["hidden_layers"]!["_configs"]!["3"]!["op_allocation"] = new JsonArray(new JsonArray("nonsense", 7.0));
        Assert.Equal(3, ((TransformerPlusPlusConfig)ModelConfig.Parse(json.ToJsonString())).Depth);
    }
}
