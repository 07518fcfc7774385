using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TransformerForge.Config;

namespace TransformerForge.Tests.Config;

/// <summary>
/// The exact wording of configuration errors (key, problem, file) and the parsing entry points of
/// <see cref="ModelConfig"/>: found by Stryker as surviving mutants in ConfigException, ModelConfig,
/// XTransformersVersion and LayerStackType.
/// </summary>
public class ConfigMessageTests
{
    const string Layers = """{"type": "Decoder", "dim": 16, "depth": 1, "heads": 2}""";

    [Fact]
    public void MessageNamesTheKeyOnlyWhenThereIsOneAndTheFileOnlyWhenKnown()
    {
        Assert.Equal("config key 'dim': must be positive", new ConfigException("dim", "must be positive").Message);
        Assert.Equal("the whole thing is wrong", new ConfigException("", "the whole thing is wrong").Message);
        Assert.Equal("m.json: config key 'dim': bad", new ConfigException("dim", "bad", "m.json").Message);
        Assert.Equal("m.json: bad", new ConfigException("", "bad", "m.json").Message);
    }

    [Fact]
    public void InFileLocatesOnceAndKeepsTheFirstFile()
    {
        var bare = new ConfigException("dim", "bad");
        var located = bare.InFile("a.json");
        Assert.NotSame(bare, located);
        Assert.Equal(("dim", "bad", "a.json"), (located.Key, located.Problem, located.File));
        Assert.Equal("a.json: config key 'dim': bad", located.Message);
        // Rethrown through another loader: the first file stays, the same exception object is returned.
        Assert.Same(located, located.InFile("b.json"));
        Assert.Equal("a.json", located.InFile("b.json").File);
    }

    [Fact]
    public void ParseAcceptsCommentsAndTrailingCommasFromAStringAndFromBytes()
    {
        var json = "{\n  // a hand-written configuration\n  \"type\": \"TransformerWrapper\", \"num_tokens\": 16, \"max_seq_len\": 8,\n  \"attn_layers\": "
            + Layers + ",\n}";
        Assert.IsType<TransformerWrapperConfig>(ModelConfig.Parse(json));
        Assert.IsType<TransformerWrapperConfig>(ModelConfig.Parse(Encoding.UTF8.GetBytes(json)));
        var path = Path.Combine(Path.GetTempPath(), $"tforge-cfgmsg-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, json);
            Assert.IsType<TransformerWrapperConfig>(ModelConfig.Load(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void LoadOfAMissingFileNamesIt()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tforge-cfgmsg-missing-{Guid.NewGuid():N}.json");
        var e = Assert.Throws<FileNotFoundException>(() => ModelConfig.Load(path));
        Assert.Equal($"model configuration '{path}' does not exist", e.Message);
        Assert.Equal(path, e.FileName);
    }

    [Fact]
    public void LoadLocatesAConfigErrorInTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tforge-cfgmsg-bad-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, """{"type": "TransformerWrapper", "max_seq_len": 8, "attn_layers": """ + Layers + "}");
            var e = Assert.Throws<ConfigException>(() => ModelConfig.Load(path));
            Assert.Equal($"{path}: config key 'num_tokens': is required", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ANonObjectIsRefusedAsAWhole()
    {
        using var doc = JsonDocument.Parse("[1, 2]");
        var e = Assert.Throws<ConfigException>(() => ModelConfig.FromJson(doc.RootElement));
        Assert.Equal(("", "the model configuration must be a JSON object"), (e.Key, e.Problem));
    }

    [Theory]
    [InlineData("""{"num_tokens": 16}""", "nothing")]
    [InlineData("""{"type": 5, "num_tokens": 16}""", "nothing")]
    [InlineData("""{"type": "Transformer", "num_tokens": 16}""", "'Transformer'")]
    public void AnUnknownOrMissingTypeListsTheTypes(string json, string got)
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));
        Assert.Equal("type", e.Key);
        Assert.Equal($"expected one of {string.Join(", ", ModelConfig.Types)}, got {got}", e.Problem);
    }

    [Fact]
    public void FeedbackTransformerRecordRefusesAnyVersionBut020()
    {
        Assert.Equal(XTransformersVersion.V0_20, new FeedbackTransformerConfig { Version = XTransformersVersion.V0_20 }.Version);
        var e = Assert.Throws<ConfigException>(() => new FeedbackTransformerConfig { Version = XTransformersVersion.V1_40 });
        Assert.Equal(XTransformersVersions.Key, e.Key);
        Assert.Equal("FeedbackTransformer follows x-transformers 0.20 only (1.40 covers x-transformers' own models; the Feedback Transformer is labml's)", e.Problem);
    }

    [Theory]
    [InlineData(null, "nothing")]
    [InlineData("2.0", "\"2.0\"")]
    [InlineData("", "\"\"")]
    public void AnUnknownVersionIsQuotedOrCalledNothing(string? given, string got)
    {
        var e = Assert.Throws<ConfigException>(() => XTransformersVersions.Parse(given, "v"));
        Assert.Equal(("v", $"expected \"0.20\" or \"1.40\", got {got}"), (e.Key, e.Problem));
    }

    [Theory]
    [InlineData(null, "nothing")]
    [InlineData("decoder", "'decoder'")]
    [InlineData("", "''")]
    public void AnUnknownLayerStackIsQuotedOrCalledNothing(string? given, string got)
    {
        var e = Assert.Throws<ConfigException>(() => LayerStackTypes.Parse(given, "t"));
        Assert.Equal(("t", $"expected one of Encoder, Decoder, CrossAttender, AttentionLayers, got {got}"), (e.Key, e.Problem));
    }

    /// <summary><c>ModelConfig.Require</c> is a protected helper for model records; reached here through a probe.</summary>
    sealed record Probe : ModelConfig
    {
        public override string Type => "Probe";
        public override JsonObject ToJson() => Header();
        public static void Requires(JsonElement obj, params string[] keys) => Require(obj, keys);
    }

    [Fact]
    public void RequireNamesTheFirstMissingKey()
    {
        using var doc = JsonDocument.Parse("""{"stack": {}, "a": 1}""");
        Probe.Requires(doc.RootElement, "a", "stack");
        var e = Assert.Throws<ConfigException>(() => Probe.Requires(doc.RootElement, "a", "b", "c"));
        Assert.Equal(("b", "is required"), (e.Key, e.Problem));
    }
}
