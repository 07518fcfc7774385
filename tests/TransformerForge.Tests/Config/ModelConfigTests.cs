using System.Text.Json.Nodes;
using TransformerForge.Config;

namespace TransformerForge.Tests.Config;

public class ModelConfigTests
{
    const string Decoder = """
        { "type": "TransformerWrapper", "num_tokens": 64, "max_seq_len": 32,
          "attn_layers": { "type": "Decoder", "dim": 32, "depth": 2, "heads": 4, "rotary_pos_emb": true, "shift_tokens": [1, 1, 0, 0] } }
        """;

    [Fact]
    public void ParsesIntoRecordsWithPascalCaseNames()
    {
        var c = Assert.IsType<TransformerWrapperConfig>(ModelConfig.Parse(Decoder));
        Assert.Equal(64, c.NumTokens);
        Assert.Equal(LayerStackType.Decoder, c.AttnLayers.Type);
        Assert.True(c.AttnLayers.RotaryPosEmb);
        Assert.Equal(new[] { 1, 1, 0, 0 }, c.AttnLayers.ShiftTokens);
        Assert.True(c.AttnLayers.IsCausal);
    }

    [Fact]
    public void SavesBackToTheSameJson()
    {
        var c = ModelConfig.Parse(Decoder);
        var again = ModelConfig.Parse(c.ToJsonString());
        Assert.True(JsonNode.DeepEquals(c.ToJson(), again.ToJson()));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Decoder), c.ToJson()));
    }

    [Fact]
    public void EveryFixtureConfigRoundTrips()
    {
        foreach (var dir in Directory.GetDirectories(TestPaths.Fixture("xtransformers")))
        {
            var model = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "case.json")))!["model"]!;
            var c = ModelConfig.Parse(model.ToJsonString());
            var back = ModelConfig.Parse(c.ToJsonString());
            Assert.True(JsonNode.DeepEquals(c.ToJson(), back.ToJson()), dir);
        }
    }

    [Fact]
    public void UnknownKeyIsAnErrorNamingIt()
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(Decoder.Replace("\"heads\": 4", "\"haeds\": 4")));
        Assert.Equal("attn_layers.haeds", e.Key);
        Assert.Contains("unknown option", e.Message);
        Assert.Contains("did you mean 'heads'", e.Message);
    }

    [Fact]
    public void WrongTypeIsAnErrorNamingTheKey()
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(Decoder.Replace("\"depth\": 2", "\"depth\": \"two\"")));
        Assert.Equal("attn_layers.depth", e.Key);
        Assert.Contains("expected an integer", e.Message);
        e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(Decoder.Replace("\"rotary_pos_emb\": true", "\"rotary_pos_emb\": 1")));
        Assert.Contains("expected true or false", e.Message);
    }

    [Theory]
    [InlineData("\"alibi_pos_bias\": true, \"rel_pos_bias\": true", "alibi_pos_bias", "not both")]
    [InlineData("\"rel_pos_num_buckets\": 64, \"rel_pos_max_distance\": 32", "rel_pos_num_buckets", "at most rel_pos_max_distance")]
    [InlineData("\"pre_norm\": false, \"sandwich_norm\": true", "sandwich_norm", "pre_norm")]
    [InlineData("\"sandwich_coef\": 5", "sandwich_coef", "depth")]
    [InlineData("\"alibi_pos_bias\": true, \"alibi_num_heads\": 9", "alibi_num_heads", "number of heads")]
    [InlineData("\"par_ratio\": 1", "par_ratio", "out of range")]
    public void InvalidCombinationsAreErrors(string options, string key, string message)
    {
        var json = Decoder.Replace("\"rotary_pos_emb\": true", options);
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));
        Assert.Equal("attn_layers." + key, e.Key);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void CausalityCannotBeSetOnEncoderOrDecoder()
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(Decoder.Replace("\"heads\": 4", "\"heads\": 4, \"causal\": false")));
        Assert.Equal("attn_layers.causal", e.Key);
    }

    [Fact]
    public void AlibiOnAnEncoderIsRejected()
    {
        var json = Decoder.Replace("\"Decoder\"", "\"Encoder\"").Replace("\"rotary_pos_emb\": true", "\"alibi_pos_bias\": true");
        Assert.Contains("causal", Assert.Throws<ConfigException>(() => ModelConfig.Parse(json)).Message);
    }

    [Fact]
    public void SeedReadmeAliasAlibiPosEmbIsAccepted()
    {
        var c = (TransformerWrapperConfig)ModelConfig.Parse(Decoder.Replace("\"rotary_pos_emb\": true", "\"alibi_pos_emb\": true"));
        Assert.True(c.AttnLayers.AlibiPosBias);
        Assert.Contains("alibi_pos_bias", c.ToJsonString());
    }

    [Fact]
    public void ShiftTokensListMustHaveOneValuePerLayer()
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(Decoder.Replace("[1, 1, 0, 0]", "[1, 1, 0]")));
        Assert.Equal("attn_layers.shift_tokens", e.Key);
    }

    [Fact]
    public void ViTNeedsAnEncoderAndDivisiblePatches()
    {
        const string vit = """{ "type": "ViTransformerWrapper", "image_size": 32, "patch_size": 8, "attn_layers": { "type": "Encoder", "dim": 32, "depth": 1 } }""";
        ModelConfig.Parse(vit);
        Assert.Contains("divisible", Assert.Throws<ConfigException>(() => ModelConfig.Parse(vit.Replace("\"patch_size\": 8", "\"patch_size\": 7"))).Message);
        Assert.Contains("Encoder", Assert.Throws<ConfigException>(() => ModelConfig.Parse(vit.Replace("\"Encoder\"", "\"Decoder\""))).Message);
    }

    [Fact]
    public void XTransformerPrefixesRouteToEncoderAndDecoder()
    {
        const string json = """
            { "type": "XTransformer", "dim": 32, "enc_num_tokens": 64, "enc_depth": 2, "enc_heads": 4, "enc_max_seq_len": 32,
              "dec_num_tokens": 50, "dec_depth": 3, "dec_heads": 4, "dec_max_seq_len": 20, "dec_cross_residual_attn": true, "tie_token_emb": false }
            """;
        var c = Assert.IsType<XTransformerConfig>(ModelConfig.Parse(json));
        Assert.Equal(3, c.Decoder.AttnLayers.Depth);
        Assert.True(c.Decoder.AttnLayers.CrossResidualAttn);
        Assert.True(c.Decoder.AttnLayers.HasCrossAttention);
        Assert.Equal(50, c.Decoder.NumTokens);
        Assert.True(JsonNode.DeepEquals(c.ToJson(), ModelConfig.Parse(c.ToJsonString()).ToJson()));
        Assert.Equal("enc_dim", Assert.Throws<ConfigException>(() => ModelConfig.Parse(json.Replace("\"enc_depth\"", "\"enc_dim\": 8, \"enc_depth\""))).Key);
        Assert.Equal("enc_haeds", Assert.Throws<ConfigException>(() => ModelConfig.Parse(json.Replace("enc_heads", "enc_haeds"))).Key);
    }

    [Fact]
    public void NotJsonAndUnknownTypeAreClearErrors()
    {
        Assert.Contains("not valid JSON", Assert.Throws<ConfigException>(() => ModelConfig.Parse("{ nope")).Message);
        Assert.Equal("type", Assert.Throws<ConfigException>(() => ModelConfig.Parse("""{ "type": "Perceiver" }""")).Key);
        Assert.Equal("num_tokens", Assert.Throws<ConfigException>(() => ModelConfig.Parse("""{ "type": "TransformerWrapper", "max_seq_len": 4, "attn_layers": {"type":"Decoder","dim":8,"depth":1} }""")).Key);
    }
}
