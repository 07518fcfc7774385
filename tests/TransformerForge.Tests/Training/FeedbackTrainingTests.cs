using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

/// <summary>The Feedback Transformer is a model type of the JSON configuration, trains with the library's trainer and generates.</summary>
public class FeedbackTrainingTests
{
    const string Json = """{ "type": "FeedbackTransformer", "num_tokens": 11, "dim": 32, "depth": 2, "heads": 4, "d_ff": 64, "shared_kv": SHARED, "max_seq_len": 16 }""";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LossFallsOnTheCopyTaskAndItGenerates(bool sharedKv)
    {
        var config = ModelConfig.Parse(Json.Replace("SHARED", sharedKv ? "true" : "false"));
        Assert.IsType<FeedbackTransformerConfig>(config);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(config.ToJson(), ModelConfig.Parse(config.ToJsonString()).ToJson()));

        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions() with { Steps = 120, BatchSize = 32, LearningRate = 1e-2, EvalEvery = 120 };
        using var trainer = Trainer.Create(config, data, options);
        var before = trainer.Evaluate();
        var result = trainer.Run();
        Assert.True(result.LastEvaluation!.Loss < before.Loss / 2, $"loss {before.Loss} -> {result.LastEvaluation.Loss}");

        var lm = trainer.Model;
        var prompt = tensor(new long[] { 1, 2, 3 }).unsqueeze(0);
        var cached = Autoregressive.Generate(lm, prompt, 8, new SamplingOptions { Greedy = true });
        var recomputed = Autoregressive.Generate(lm, prompt, 8, new SamplingOptions { Greedy = true, UseCache = false });
        Assert.Equal(new long[] { 1, 8 }, cached.shape);
        Assert.True(cached.eq(recomputed).all().item<bool>());
    }

    [Fact]
    public void SavesAndLoadsAsAModelDirectory()
    {
        var config = ModelConfig.Parse(Json.Replace("SHARED", "true"));
        var model = ModelFactory.CreateLanguageModel(config);
        var dir = Path.Combine(Path.GetTempPath(), $"tforge-fb-{Guid.NewGuid():N}");
        try
        {
            ModelDirectory.Save(dir, config, model);
            var (loadedConfig, loaded) = ModelDirectory.LoadLanguageModel(dir);
            Assert.IsType<FeedbackLanguageModel>(loaded);
            var x = randint(0, 11, new long[] { 2, 6 });
            using var _ = no_grad();
            Assert.True((model.Logits(x) - loaded.Logits(x)).abs().max().item<float>() == 0);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void BadKeysAreNamed()
    {
        Assert.Equal("heads", Assert.Throws<ConfigException>(() => ModelConfig.Parse(Json.Replace("SHARED", "true").Replace("\"heads\": 4", "\"heads\": 5"))).Key);
        Assert.Equal("shard_kv", Assert.Throws<ConfigException>(() => ModelConfig.Parse(Json.Replace("shared_kv", "shard_kv").Replace("SHARED", "true"))).Key);
    }
}
