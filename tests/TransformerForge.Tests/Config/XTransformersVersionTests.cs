using System.Text.Json.Nodes;
using TransformerForge.Config;

namespace TransformerForge.Tests.Config;

/// <summary>
/// Which x-transformers release a configuration means is explicit in its JSON (<c>x_transformers_version</c>); without
/// the key it is 0.20 as before. Each version accepts only its own options, and says which version a foreign key needs.
/// </summary>
public class XTransformersVersionTests
{
    const string Llama = """
        { "type": "TransformerWrapper", "x_transformers_version": "1.40", "num_tokens": 64, "max_seq_len": 32,
          "attn_layers": { "type": "Decoder", "dim": 64, "depth": 2, "heads": 4, "attn_kv_heads": 2, "attn_dim_head": 32,
                           "rotary_pos_emb": true, "ff_swish": true, "ff_glu": true, "ff_no_bias": true, "use_rmsnorm": true } }
        """;

    const string Plain = """{ "type": "TransformerWrapper", "num_tokens": 64, "max_seq_len": 32, "attn_layers": { "type": "Decoder", "dim": 32, "depth": 2 } }""";

    static string V140(string json) => json.Replace("\"type\": \"TransformerWrapper\",", "\"type\": \"TransformerWrapper\", \"x_transformers_version\": \"1.40\",");

    [Fact]
    public void WithoutTheKeyAConfigurationIs020AndWritesNoKey()
    {
        var c = ModelConfig.Parse(Plain);
        Assert.Equal(XTransformersVersion.V0_20, c.Version);
        Assert.Equal(XTransformersVersion.V0_20, ((TransformerWrapperConfig)c).AttnLayers.Attn.Version);
        Assert.False(c.ToJson().ContainsKey(XTransformersVersions.Key));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Plain), c.ToJson()));
    }

    [Fact]
    public void TheKeySelects140AndTheStackAndItsOptionsCarryIt()
    {
        var c = Assert.IsType<TransformerWrapperConfig>(ModelConfig.Parse(Llama));
        Assert.Equal(XTransformersVersion.V1_40, c.Version);
        Assert.Equal(XTransformersVersion.V1_40, c.AttnLayers.Version);
        Assert.Equal(XTransformersVersion.V1_40, c.AttnLayers.SelfAttn.Version);
        Assert.Equal(XTransformersVersion.V1_40, c.AttnLayers.FeedForward.Version);
        Assert.Equal(2, c.AttnLayers.Attn.KvHeads);
        Assert.True(c.AttnLayers.Ff.Swish && c.AttnLayers.Ff.NoBias && c.AttnLayers.Ff.Glu);
        // Written back at the top, right after the type, and read back the same.
        var json = c.ToJson();
        Assert.Equal("1.40", json[XTransformersVersions.Key]!.GetValue<string>());
        Assert.Equal(XTransformersVersions.Key, json.Select(p => p.Key).ElementAt(1));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Llama), json));
        // A record built in C# carries the version into the parts it is given afterwards, in either order.
        var built = new TransformerWrapperConfig { AttnLayers = new AttentionLayersConfig { Dim = 8, Depth = 1 }, Version = XTransformersVersion.V1_40 };
        Assert.Equal(XTransformersVersion.V1_40, built.AttnLayers.Attn.Version);
        built = new TransformerWrapperConfig { Version = XTransformersVersion.V1_40, AttnLayers = new AttentionLayersConfig { Dim = 8, Depth = 1 } };
        Assert.Equal(XTransformersVersion.V1_40, (built.AttnLayers with { Attn = new AttentionOptions() }).Attn.Version);
    }

    [Theory]
    [InlineData("1.40.11", XTransformersVersion.V1_40)]
    [InlineData("0.20", XTransformersVersion.V0_20)]
    [InlineData("0.20.7", XTransformersVersion.V0_20)]
    public void PatchReleasesNameTheirMinorVersion(string given, XTransformersVersion expected) =>
        Assert.Equal(expected, ModelConfig.Parse(Plain.Replace("\"num_tokens\"", $"\"x_transformers_version\": \"{given}\", \"num_tokens\"")).Version);

    [Theory]
    [InlineData("\"2.0\"", "expected \"0.20\" or \"1.40\"")]
    [InlineData("1.4", "expected a string")]
    public void AnUnknownVersionIsAnErrorNamingTheKey(string value, string message)
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(Plain.Replace("\"num_tokens\"", $"\"x_transformers_version\": {value}, \"num_tokens\"")));
        Assert.Equal(XTransformersVersions.Key, e.Key);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void TheVersionBelongsAtTheTop()
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(Plain.Replace("\"dim\": 32", "\"dim\": 32, \"x_transformers_version\": \"1.40\"")));
        Assert.Equal("attn_layers.x_transformers_version", e.Key);
    }

    [Theory]
    [InlineData("attn_layers", "attn_kv_heads", "2")]
    [InlineData("attn_layers", "attn_one_kv_head", "true")]
    [InlineData("attn_layers", "attn_qk_norm", "true")]
    [InlineData("attn_layers", "ff_swish", "true")]
    [InlineData("attn_layers", "use_simple_rmsnorm", "true")]
    [InlineData("attn_layers", "resi_dual", "true")]
    [InlineData("attn_layers", "unet_skips", "true")]
    [InlineData("attn_layers", "rotary_xpos", "true")]
    [InlineData("", "l2norm_embed", "true")]
    public void A140OptionIn020SaysWhichVersionItNeeds(string where, string key, string value)
    {
        var json = where == "" ? Plain.Replace("\"num_tokens\"", $"\"{key}\": {value}, \"num_tokens\"") : Plain.Replace("\"dim\": 32", $"\"dim\": 32, \"{key}\": {value}");
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));
        Assert.Equal(where == "" ? key : $"{where}.{key}", e.Key);
        Assert.Contains("x-transformers 1.40 option", e.Message);
        Assert.Contains("\"x_transformers_version\": \"1.40\"", e.Message);
    }

    [Theory]
    [InlineData("attn_talking_heads")]
    [InlineData("attn_collab_heads")]
    [InlineData("attn_use_entmax15")]
    [InlineData("use_rezero")]
    [InlineData("position_infused_attn")]
    [InlineData("alibi_learned")]
    public void A020OptionThat140DroppedIsRejected(string key)
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(V140(Plain).Replace("\"dim\": 32", $"\"dim\": 32, \"{key}\": true")));
        Assert.Equal($"attn_layers.{key}", e.Key);
        Assert.Contains("1.40 no longer has", e.Message);
    }

    [Fact]
    public void ARenamedOptionNamesItsNewKey()
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(V140(Plain).Replace("\"num_tokens\"", "\"use_pos_emb\": false, \"num_tokens\"")));
        Assert.Equal("use_pos_emb", e.Key);
        Assert.Contains("'use_abs_pos_emb'", e.Message);
        var c = (TransformerWrapperConfig)ModelConfig.Parse(V140(Plain).Replace("\"num_tokens\"", "\"use_abs_pos_emb\": false, \"num_tokens\""));
        Assert.False(c.UsePosEmb);
        Assert.False(c.ToJson()["use_abs_pos_emb"]!.GetValue<bool>());
        Assert.False(c.ToJson().ContainsKey("use_pos_emb"));
    }

    [Fact]
    public void ARecordBuiltInCSharpIsCheckedForItsVersionToo()
    {
        var layers = new AttentionLayersConfig { Dim = 32, Depth = 1, Attn = new AttentionOptions { QkNorm = true } };
        var e = Assert.Throws<ConfigException>(() => layers.Validate());
        Assert.Equal("attn_qk_norm", e.Key);
        (layers with { Version = XTransformersVersion.V1_40 }).Validate();
        e = Assert.Throws<ConfigException>(() => (new AttentionLayersConfig { Dim = 32, Depth = 1, UseRezero = true, Version = XTransformersVersion.V1_40 }).Validate());
        Assert.Equal("use_rezero", e.Key);
    }

    [Fact]
    public void TheFeedbackTransformerRefuses140()
    {
        // labml's model: no x-transformers version applies to it.
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse("""
            { "type": "FeedbackTransformer", "x_transformers_version": "1.40", "num_tokens": 11, "dim": 32, "depth": 2, "heads": 4, "d_ff": 64, "max_seq_len": 16 }
            """));
        Assert.Equal(XTransformersVersions.Key, e.Key);
        Assert.Contains("0.20 only", e.Message);
    }

    [Fact]
    public void ViTUnder140HasNoClsTokenAndLosesTheHeadDropout()
    {
        var vit = ModelConfig.Parse("""
            { "type": "ViTransformerWrapper", "x_transformers_version": "1.40", "image_size": 16, "patch_size": 4, "num_classes": 3,
              "attn_layers": { "type": "Encoder", "dim": 16, "depth": 1 } }
            """);
        Assert.Equal(XTransformersVersion.V1_40, ((ViTransformerWrapperConfig)vit).AttnLayers.Version);
        Assert.True(JsonNode.DeepEquals(vit.ToJson(), ModelConfig.Parse(vit.ToJsonString()).ToJson()));
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(vit.ToJsonString().Replace("\"num_classes\"", "\"dropout\": 0.1, \"num_classes\"")));
        Assert.Equal("dropout", e.Key);
    }

    [Fact]
    public void BareLayerStacksAndXTransformersCarryTheVersion()
    {
        var stack = ModelConfig.Parse("""{ "type": "Encoder", "x_transformers_version": "1.40", "dim": 16, "depth": 1, "attn_qk_norm": true, "attn_dim_head": 8 }""");
        Assert.Equal(XTransformersVersion.V1_40, stack.Version);
        Assert.True(JsonNode.DeepEquals(stack.ToJson(), ModelConfig.Parse(stack.ToJsonString()).ToJson()));
        Assert.Equal("1.40", stack.ToJson()[XTransformersVersions.Key]!.GetValue<string>());

        var xt = Assert.IsType<XTransformerConfig>(ModelConfig.Parse("""
            { "type": "XTransformer", "x_transformers_version": "1.40", "dim": 16, "enc_num_tokens": 10, "enc_max_seq_len": 8,
              "enc_depth": 1, "dec_num_tokens": 10, "dec_max_seq_len": 8, "dec_depth": 1, "dec_attn_kv_heads": 2 }
            """));
        Assert.Equal(XTransformersVersion.V1_40, xt.Decoder.AttnLayers.Version);
        Assert.True(xt.Encoder.ReturnOnlyEmbed);
        Assert.True(JsonNode.DeepEquals(xt.ToJson(), ModelConfig.Parse(xt.ToJsonString()).ToJson()));
    }

    [Fact]
    public void EveryFixtureConfigRoundTripsUnderItsVersion()
    {
        foreach (var dir in Directory.GetDirectories(TestPaths.Fixture("xtransformers-1.40")))
        {
            var model = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "case.json")))!["model"]!.AsObject();
            model[XTransformersVersions.Key] = "1.40";
            var c = ModelConfig.Parse(model.ToJsonString());
            Assert.Equal(XTransformersVersion.V1_40, c.Version);
            Assert.True(JsonNode.DeepEquals(c.ToJson(), ModelConfig.Parse(c.ToJsonString()).ToJson()), dir);
        }
    }

    [Theory]
    [InlineData("\"heads\": 4, \"attn_kv_heads\": 3", "attn_layers.attn_kv_heads", "must divide heads")]
    [InlineData("\"attn_kv_heads\": 2, \"attn_one_kv_head\": true", "attn_layers.attn_kv_heads", "not both")]
    [InlineData("\"attn_kv_heads\": 0", "attn_layers.attn_kv_heads", "positive")]
    [InlineData("\"attn_qk_norm\": true, \"attn_qk_norm_groups\": 32", "attn_layers.attn_qk_norm_groups", "too small")]
    [InlineData("\"attn_qk_norm\": true, \"attn_qk_norm_groups\": 3", "attn_layers.attn_qk_norm_groups", "must divide")]
    [InlineData("\"attn_qk_norm_scale\": 0", "attn_layers.attn_qk_norm_scale", "positive")]
    [InlineData("\"attn_logit_softclamp_value\": -1", "attn_layers.attn_logit_softclamp_value", "positive")]
    [InlineData("\"softclamp_output_value\": 0", "attn_layers.softclamp_output_value", "positive")]
    [InlineData("\"resi_dual\": true, \"sandwich_norm\": true", "attn_layers.resi_dual", "not both")]
    [InlineData("\"resi_dual_scale\": 0", "attn_layers.resi_dual_scale", "(0, 1]")]
    [InlineData("\"dynamic_pos_bias\": true, \"alibi_pos_bias\": true", "attn_layers.dynamic_pos_bias", "up to one")]
    [InlineData("\"dynamic_pos_bias_mlp_depth\": 0", "attn_layers.dynamic_pos_bias_mlp_depth", "at least 1")]
    [InlineData("\"use_simple_rmsnorm\": true, \"use_rmsnorm\": true", "attn_layers.use_simple_rmsnorm", "choose one")]
    [InlineData("\"weight_tie_layers\": true, \"custom_layers\": [\"a\", \"f\"]", "attn_layers.weight_tie_layers", "cannot be combined")]
    [InlineData("\"unet_skips\": true, \"weight_tie_layers\": true", "attn_layers.unet_skips", "depth of at least 2")]
    [InlineData("\"rotary_xpos_scale_base\": 0", "attn_layers.rotary_xpos_scale_base", "positive")]
    public void Bad140OptionsAreErrorsNamingTheKey(string options, string key, string message)
    {
        var json = V140(Plain).Replace("\"dim\": 32, \"depth\": 2", $"\"dim\": 32, \"depth\": 2, {options}").Replace("\"depth\": 2 }", "\"depth\": 2, \"attn_dim_head\": 64 }");
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));
        Assert.Equal(key, e.Key);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void XposNeedsACausalStack()
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse("""{ "type": "Encoder", "x_transformers_version": "1.40", "dim": 16, "depth": 1, "rotary_xpos": true }"""));
        Assert.Equal("rotary_xpos", e.Key);
    }

    [Fact]
    public void TiedEmbeddingsNeedTheModelWidth()
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(Plain.Replace("\"num_tokens\"", "\"tie_embedding\": true, \"emb_dim\": 16, \"num_tokens\"")));
        Assert.Equal("tie_embedding", e.Key);
    }

    [Fact]
    public void UnetSkipsOnAnOrderWithoutMirrorLayersAreRejected()
    {
        // custom_layers count every layer as a block: the second half has more layers than the first has skips
        // (x-transformers 1.40 fails on the same configuration).
        var json = V140(Plain).Replace("\"depth\": 2 }", "\"depth\": 2, \"custom_layers\": [\"a\", \"f\", \"a\", \"a\", \"f\", \"f\"], \"unet_skips\": true }");
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));
        Assert.Equal("attn_layers.unet_skips", e.Key);
    }
}
