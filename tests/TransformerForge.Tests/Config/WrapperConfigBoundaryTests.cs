using System.Text.Json.Nodes;
using TransformerForge.Config;

namespace TransformerForge.Tests.Config;

/// <summary>
/// Required keys, validation boundaries (the value just inside and just outside) and JSON round trips of the model
/// wrappers: TransformerWrapper, ContinuousTransformerWrapper, ViTransformerWrapper, FeedbackTransformer and
/// XTransformer. Found by Stryker as surviving mutants in their Config records.
/// </summary>
public class WrapperConfigBoundaryTests
{
    const string Decoder = """{"type": "Decoder", "dim": 16, "depth": 1, "heads": 2}""";
    const string Encoder = """{"type": "Encoder", "dim": 16, "depth": 1, "heads": 2}""";

    static ConfigException Refused(string json) => Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));

    static void AssertRefused(string json, string key, string problem)
    {
        var e = Refused(json);
        Assert.Equal((key, problem), (e.Key, e.Problem));
    }

    // ---- TransformerWrapper

    static string Tw(string extra = "", string layers = Decoder) =>
        """{"type": "TransformerWrapper", "num_tokens": 16, "max_seq_len": 8, "attn_layers": """ + layers + extra + "}";

    [Theory]
    [InlineData("num_tokens")]
    [InlineData("max_seq_len")]
    [InlineData("attn_layers")]
    public void TransformerWrapperRequiresItsKeys(string key)
    {
        var obj = JsonNode.Parse(Tw())!.AsObject();
        obj.Remove(key);
        AssertRefused(obj.ToJsonString(), key, "is required");
    }

    [Theory]
    [InlineData("num_tokens", "0", "must be a positive integer")]
    [InlineData("max_seq_len", "0", "must be a positive integer")]
    [InlineData("emb_dim", "0", "must be a positive integer")]
    [InlineData("max_mem_len", "-1", "must not be negative")]
    [InlineData("shift_mem_down", "-1", "must not be negative")]
    [InlineData("num_memory_tokens", "-1", "must not be negative")]
    [InlineData("emb_dropout", "1.0", "must be in [0, 1)")]
    [InlineData("emb_dropout", "-0.01", "must be in [0, 1)")]
    public void TransformerWrapperRefusesValuesJustOutside(string key, string value, string problem)
    {
        var obj = JsonNode.Parse(Tw())!.AsObject();
        obj[key] = JsonNode.Parse(value);
        AssertRefused(obj.ToJsonString(), key, problem);
    }

    [Theory]
    [InlineData("num_tokens", "1")]
    [InlineData("max_seq_len", "1")]
    [InlineData("emb_dim", "1")]
    [InlineData("max_mem_len", "0")]
    [InlineData("shift_mem_down", "0")]
    [InlineData("num_memory_tokens", "0")]
    [InlineData("emb_dropout", "0.999")]
    [InlineData("emb_dropout", "0")]
    public void TransformerWrapperAcceptsValuesJustInside(string key, string value)
    {
        var obj = JsonNode.Parse(Tw())!.AsObject();
        obj[key] = JsonNode.Parse(value);
        var c = ModelConfig.Parse(obj.ToJsonString());
        // And it writes back what it read.
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(c.ToJsonString()), ModelConfig.Parse(c.ToJsonString()).ToJson()));
    }

    [Fact]
    public void TransformerWrapperValidateRefusesARecordBuiltInCode()
    {
        var layers = new AttentionLayersConfig { Dim = 16, Depth = 1, Heads = 2 };
        var ok = new TransformerWrapperConfig { NumTokens = 16, MaxSeqLen = 8, AttnLayers = layers };
        ok.Validate();
        var e = Assert.Throws<ConfigException>(() => (ok with { MaxMemLen = -1 }).Validate("enc_"));
        Assert.Equal(("enc_max_mem_len", "must not be negative"), (e.Key, e.Problem));
        e = Assert.Throws<ConfigException>(() => (ok with { ShiftMemDown = -1 }).Validate());
        Assert.Equal(("shift_mem_down", "must not be negative"), (e.Key, e.Problem));
        e = Assert.Throws<ConfigException>(() => (ok with { EmbDropout = 1 }).Validate());
        Assert.Equal(("emb_dropout", "must be in [0, 1)"), (e.Key, e.Problem));
        // A 1.40 option set on a 0.20 record is refused, though JSON could never say it.
        e = Assert.Throws<ConfigException>(() => (ok with { L2normEmbed = true }).Validate());
        Assert.Equal("l2norm_embed", e.Key);
        (ok with { Version = XTransformersVersion.V1_40, L2normEmbed = true }).Validate();
        // The layer stack always follows the wrapper's version, whichever is set first.
        Assert.Equal(XTransformersVersion.V1_40, (ok with { Version = XTransformersVersion.V1_40 }).AttnLayers.Version);
        Assert.Equal(XTransformersVersion.V1_40, new TransformerWrapperConfig { Version = XTransformersVersion.V1_40, AttnLayers = layers }.AttnLayers.Version);
    }

    // ---- ContinuousTransformerWrapper

    static string Ctw(string extra = "") =>
        """{"type": "ContinuousTransformerWrapper", "max_seq_len": 8, "attn_layers": """ + Encoder + extra + "}";

    [Theory]
    [InlineData("max_seq_len")]
    [InlineData("attn_layers")]
    public void ContinuousWrapperRequiresItsKeys(string key)
    {
        var obj = JsonNode.Parse(Ctw())!.AsObject();
        obj.Remove(key);
        AssertRefused(obj.ToJsonString(), key, "is required");
    }

    [Theory]
    [InlineData("max_seq_len", "0")]
    [InlineData("dim_in", "0")]
    [InlineData("dim_out", "0")]
    public void ContinuousWrapperRefusesZeroSizes(string key, string value)
    {
        var obj = JsonNode.Parse(Ctw())!.AsObject();
        obj[key] = JsonNode.Parse(value);
        AssertRefused(obj.ToJsonString(), key, "must be a positive integer");
        obj[key] = 1;
        var c = Assert.IsType<ContinuousTransformerWrapperConfig>(ModelConfig.Parse(obj.ToJsonString()));
        Assert.True(JsonNode.DeepEquals(obj, c.ToJson()));
    }

    // ---- ViTransformerWrapper

    static string Vit(string extra = "") =>
        """{"type": "ViTransformerWrapper", "image_size": 8, "patch_size": 4, "attn_layers": """ + Encoder + extra + "}";

    [Theory]
    [InlineData("image_size")]
    [InlineData("patch_size")]
    [InlineData("attn_layers")]
    public void VitRequiresItsKeys(string key)
    {
        var obj = JsonNode.Parse(Vit())!.AsObject();
        obj.Remove(key);
        AssertRefused(obj.ToJsonString(), key, "is required");
    }

    [Theory]
    [InlineData("patch_size", "0")]
    [InlineData("image_size", "0")]
    [InlineData("patch_size", "-4")]
    [InlineData("image_size", "-8")]
    public void VitRefusesNonPositiveImageOrPatch(string key, string value)
    {
        var obj = JsonNode.Parse(Vit())!.AsObject();
        obj[key] = JsonNode.Parse(value);
        AssertRefused(obj.ToJsonString(), "patch_size", "image_size and patch_size must be positive");
    }

    [Theory]
    [InlineData("num_classes", "0", "must be a positive integer")]
    [InlineData("dropout", "1.0", "must be in [0, 1)")]
    [InlineData("emb_dropout", "1.0", "must be in [0, 1)")]
    public void VitRefusesValuesJustOutside(string key, string value, string problem)
    {
        var obj = JsonNode.Parse(Vit())!.AsObject();
        obj[key] = JsonNode.Parse(value);
        AssertRefused(obj.ToJsonString(), key, problem);
    }

    [Theory]
    [InlineData("num_classes", "1")]
    [InlineData("dropout", "0.999")]
    [InlineData("emb_dropout", "0.999")]
    public void VitAcceptsValuesJustInsideAndWritesThemBack(string key, string value)
    {
        var obj = JsonNode.Parse(Vit())!.AsObject();
        obj[key] = JsonNode.Parse(value);
        var c = Assert.IsType<ViTransformerWrapperConfig>(ModelConfig.Parse(obj.ToJsonString()));
        Assert.True(JsonNode.DeepEquals(obj, c.ToJson()));
    }

    // ---- FeedbackTransformer

    const string Fb = """{"type": "FeedbackTransformer", "num_tokens": 16, "dim": 16, "depth": 1, "heads": 2}""";

    [Theory]
    [InlineData("num_tokens")]
    [InlineData("dim")]
    [InlineData("depth")]
    public void FeedbackRequiresItsKeys(string key)
    {
        var obj = JsonNode.Parse(Fb)!.AsObject();
        obj.Remove(key);
        AssertRefused(obj.ToJsonString(), key, "is required");
    }

    [Theory]
    [InlineData("num_tokens", "0", "1", "must be a positive integer")]
    [InlineData("dim", "0", "16", "must be a positive integer")]
    [InlineData("depth", "0", "1", "must be a positive integer")]
    [InlineData("d_ff", "0", "1", "must be a positive integer")]
    [InlineData("dropout", "1.0", "0.999", "must be in [0, 1)")]
    [InlineData("dropout", "-0.01", "0", "must be in [0, 1)")]
    [InlineData("max_seq_len", "1", "2", "must be at least 2")]
    public void FeedbackBoundaries(string key, string outside, string inside, string problem)
    {
        var obj = JsonNode.Parse(Fb)!.AsObject();
        obj[key] = JsonNode.Parse(outside);
        AssertRefused(obj.ToJsonString(), key, problem);
        obj[key] = JsonNode.Parse(inside);
        ModelConfig.Parse(obj.ToJsonString());
    }

    [Fact]
    public void FeedbackWritesItsTypeAndEveryKeyThatDiffers()
    {
        var c = Assert.IsType<FeedbackTransformerConfig>(ModelConfig.Parse(
            """{"type": "FeedbackTransformer", "num_tokens": 16, "dim": 16, "depth": 1, "heads": 2, "d_ff": 24, "shared_kv": true, "max_seq_len": 64, "dropout": 0.25}"""));
        var json = c.ToJson();
        Assert.Equal(
            """{"type":"FeedbackTransformer","num_tokens":16,"dim":16,"depth":1,"heads":2,"d_ff":24,"dropout":0.25,"shared_kv":true,"max_seq_len":64}""",
            json.ToJsonString());
        Assert.Equal(c, ModelConfig.Parse(c.ToJsonString()));
        Assert.Equal("""{"type":"FeedbackTransformer","num_tokens":16,"dim":16,"depth":1}""",
            new FeedbackTransformerConfig { NumTokens = 16, Dim = 16, Depth = 1 }.ToJson().ToJsonString());
    }

    // ---- XTransformer

    static JsonObject Xt() => JsonNode.Parse("""
        {"type": "XTransformer", "dim": 16,
         "enc_num_tokens": 16, "enc_max_seq_len": 8, "enc_depth": 1, "enc_heads": 2,
         "dec_num_tokens": 12, "dec_max_seq_len": 6, "dec_depth": 1, "dec_heads": 2}
        """)!.AsObject();

    [Theory]
    [InlineData("dim")]
    [InlineData("enc_num_tokens")]
    [InlineData("enc_max_seq_len")]
    [InlineData("dec_num_tokens")]
    [InlineData("dec_max_seq_len")]
    public void XTransformerRequiresItsKeys(string key)
    {
        var obj = Xt();
        obj.Remove(key);
        AssertRefused(obj.ToJsonString(), key, "is required");
    }

    [Theory]
    [InlineData("enc_type", "\"Decoder\"")]
    [InlineData("dec_cross_attend", "false")]
    [InlineData("dec_causal", "true")]
    public void XTransformerRefusesTheKeysItFixes(string key, string value)
    {
        var obj = Xt();
        obj[key] = JsonNode.Parse(value);
        AssertRefused(obj.ToJsonString(), key, "is fixed by XTransformer (encoder: Encoder; decoder: Decoder with cross_attend)");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void XTransformerReadsTieTokenEmbBothWays(bool tie)
    {
        var obj = Xt();
        obj["tie_token_emb"] = tie;
        var c = Assert.IsType<XTransformerConfig>(ModelConfig.Parse(obj.ToJsonString()));
        Assert.Equal(tie, c.TieTokenEmb);
    }

    [Theory]
    [InlineData("0.20")]
    [InlineData("1.40")]
    public void XTransformerRoundTripsWithoutFixedKeys(string version)
    {
        var obj = Xt();
        obj[XTransformersVersions.Key] = version;
        obj["enc_num_memory_tokens"] = 2;
        obj["dec_emb_dropout"] = 0.1;
        obj["enc_ff_mult"] = 2;
        var c = Assert.IsType<XTransformerConfig>(ModelConfig.Parse(obj.ToJsonString()));
        var written = c.ToJson();
        foreach (var fixedKey in new[] { "enc_type", "dec_type", "dec_cross_attend", "enc_cross_attend", "enc_causal", "dec_causal" })
            Assert.False(written.ContainsKey(fixedKey), fixedKey);
        Assert.Equal(written.ToJsonString(), ModelConfig.Parse(written.ToJsonString()).ToJson().ToJsonString());
        var expected = Xt();
        if (version != "0.20") expected[XTransformersVersions.Key] = version;
        foreach (var (k, v) in new JsonObject { ["enc_num_memory_tokens"] = 2, ["dec_emb_dropout"] = 0.1, ["enc_ff_mult"] = 2 }) expected[k] = v?.DeepClone();
        Assert.Equal(expected.OrderBy(p => p.Key).Select(p => (p.Key, p.Value!.ToJsonString())),
            written.OrderBy(p => p.Key).Select(p => (p.Key, p.Value!.ToJsonString())));
    }

    [Fact]
    public void XTransformerVersionSetInCodeReachesBothHalves()
    {
        var c = new XTransformerConfig { Version = XTransformersVersion.V1_40 };
        Assert.Equal(XTransformersVersion.V1_40, c.Version);
        Assert.Equal(XTransformersVersion.V1_40, c.Encoder.Version);
        Assert.Equal(XTransformersVersion.V1_40, c.Decoder.Version);
        Assert.Equal(XTransformersVersion.V1_40, c.Decoder.AttnLayers.Version);
    }

    [Fact]
    public void XTransformerKeysListItsOwnThenEncoderThenDecoderKeys()
    {
        Assert.Equal(new[]
        {
            "dim", "tie_token_emb",
            "enc_num_tokens", "enc_max_seq_len", "enc_emb_dropout", "enc_num_memory_tokens",
            "dec_num_tokens", "dec_max_seq_len", "dec_emb_dropout",
            "enc_<attn_layers key>", "dec_<attn_layers key>",
        }, XTransformerConfig.Keys);
    }
}
