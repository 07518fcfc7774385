using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Models;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Models;

/// <summary>The factory hands training and generation a typed <see cref="LanguageModel"/>, and refuses other model types by name.</summary>
public class ModelFactoryTests
{
    const string Decoder = """{ "type": "TransformerWrapper", "num_tokens": 12, "max_seq_len": 8, "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "attn_dim_head": 8 } }""";
    const string Feedback = """{ "type": "FeedbackTransformer", "num_tokens": 12, "dim": 16, "depth": 1, "heads": 2 }""";
    const string Vit = """{ "type": "ViTransformerWrapper", "image_size": 8, "patch_size": 4, "attn_layers": { "type": "Encoder", "dim": 16, "depth": 1 } }""";

    [Theory]
    [InlineData(Decoder, typeof(TransformerWrapper))]
    [InlineData(Feedback, typeof(FeedbackLanguageModel))]
    public void LanguageModelConfigsBuildLanguageModels(string json, Type type)
    {
        var config = ModelConfig.Parse(json);
        Assert.True(ModelFactory.IsLanguageModel(config));
        using var model = ModelFactory.CreateLanguageModel(config);
        Assert.IsType(type, model);
        Assert.Equal(12, model.NumTokens);
        using var _ = no_grad();
        var tokens = randint(0, 12, new long[] { 2, 5 });
        // forward(tokens) is the logits, for every language model.
        Assert.True(model.forward(tokens).eq(model.Logits(tokens)).all().item<bool>());
        Assert.Equal(new long[] { 2, 5, 12 }, model.forward(tokens).shape);
    }

    [Fact]
    public void OtherModelsAreRefusedNamingTheType()
    {
        var vit = ModelConfig.Parse(Vit);
        Assert.False(ModelFactory.IsLanguageModel(vit));
        var e = Assert.Throws<ConfigException>(() => ModelFactory.CreateLanguageModel(vit));
        Assert.Equal("type", e.Key);
        Assert.Contains("ViTransformerWrapper is not a language model", e.Message);

        var dir = Path.Combine(Path.GetTempPath(), $"tforge-vit-{Guid.NewGuid():N}");
        try
        {
            using (var model = ModelFactory.Create(vit)) ModelDirectory.Save(dir, vit, model);
            Assert.Equal("type", Assert.Throws<ConfigException>(() => ModelDirectory.LoadLanguageModel(dir)).Key);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
