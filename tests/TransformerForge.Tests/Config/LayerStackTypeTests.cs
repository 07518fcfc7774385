using System.Text.Json.Nodes;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Modules;

namespace TransformerForge.Tests.Config;

/// <summary>
/// The layer-stack type is an enum in C# (<c>Type = "decoder"</c> does not compile) and exactly x-transformers' class
/// names in JSON; any other spelling, in JSON or by casting, is a <see cref="ConfigException"/> naming <c>type</c>.
/// </summary>
public class LayerStackTypeTests
{
    [Theory]
    [InlineData("Encoder", LayerStackType.Encoder, false)]
    [InlineData("Decoder", LayerStackType.Decoder, true)]
    [InlineData("CrossAttender", LayerStackType.CrossAttender, false)]
    [InlineData("AttentionLayers", LayerStackType.AttentionLayers, false)]
    public void JsonNamesAreTheClassNames(string name, LayerStackType type, bool causal)
    {
        var json = $$"""{ "type": "{{name}}", "dim": 16, "depth": 1 }""";
        var bare = Assert.IsType<AttentionLayersModelConfig>(ModelConfig.Parse(json));
        Assert.Equal(type, bare.Layers.Type);
        Assert.Equal(causal, bare.Layers.IsCausal);
        Assert.Equal(name, bare.Type);
        Assert.Equal(name, bare.ToJson()["type"]!.GetValue<string>());

        var wrapped = $$"""{ "type": "TransformerWrapper", "num_tokens": 8, "max_seq_len": 8, "attn_layers": {{json}} }""";
        var c = Assert.IsType<TransformerWrapperConfig>(ModelConfig.Parse(wrapped));
        Assert.Equal(type, c.AttnLayers.Type);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(wrapped), c.ToJson()));
    }

    [Theory]
    [InlineData("decoder")]
    [InlineData("DECODER")]
    [InlineData("Decoder ")]
    [InlineData("TransformerWrapper")]
    public void OtherSpellingsAreRefusedNamingTheKey(string name)
    {
        var layers = $$"""{ "type": "{{name}}", "dim": 16, "depth": 1 }""";
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(
            $$"""{ "type": "TransformerWrapper", "num_tokens": 8, "max_seq_len": 8, "attn_layers": {{layers}} }"""));
        Assert.Equal("attn_layers.type", e.Key);
        Assert.Contains("Encoder, Decoder, CrossAttender, AttentionLayers", e.Message);
        Assert.Contains($"'{name}'", e.Message);

        if (name == "TransformerWrapper") return;
        e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(layers));
        Assert.Equal("type", e.Key);
    }

    [Fact]
    public void AnUndefinedValueFailsLoudlyInCSharp()
    {
        var layers = new AttentionLayersConfig { Type = (LayerStackType)42, Dim = 16, Depth = 1 };
        Assert.Equal("type", Assert.Throws<ConfigException>(() => layers.Validate()).Key);
        Assert.Equal("type", Assert.Throws<ConfigException>(() => new AttentionLayers(layers)).Key);
        var config = new TransformerWrapperConfig { NumTokens = 8, MaxSeqLen = 8, AttnLayers = layers };
        Assert.Equal("attn_layers.type", Assert.Throws<ConfigException>(() => new TransformerWrapper(config)).Key);
    }
}
