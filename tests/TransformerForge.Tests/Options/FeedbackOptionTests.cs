using System.Text.Json;
using TorchSharp;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Parity;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Options;

/// <summary>
/// The FeedbackTransformer configuration builds the model labml's fixtures were computed with: a JSON configuration
/// with the fixture's sizes loads the fixture's weights into its transformer and reproduces the fixture's output.
/// </summary>
public class FeedbackOptionTests
{
    [Theory]
    [InlineData("feedback_transformer", false)]
    [InlineData("feedback_transformer_kv", true)]
    [Proves("FeedbackTransformer.dim", "FeedbackTransformer.depth", "FeedbackTransformer.heads", "FeedbackTransformer.d_ff", "FeedbackTransformer.shared_kv")]
    public void ConfigurationBuildsTheFixtureModel(string name, bool sharedKv)
    {
        var dir = TestPaths.Fixture("labml", name);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "case.json")));
        var c = doc.RootElement;
        // Not the defaults (heads 8, d_ff 4·dim): each size must come from its key. labml learns 4096 relative positions:
        // a step attends to at most max_seq_len - 1 earlier ones.
        var model = Build.Model<FeedbackLanguageModel>($$"""
            { "type": "FeedbackTransformer", "num_tokens": 5, "dim": {{c.GetProperty("d_model")}}, "depth": {{c.GetProperty("n_layers")}},
              "heads": {{c.GetProperty("heads")}}, "d_ff": {{c.GetProperty("d_ff")}}, "shared_kv": {{(sharedKv ? "true" : "false")}}, "max_seq_len": 4097 }
            """, perturbSeed: null);
        var weights = SafeTensorsTorch.Load(Path.Combine(dir, "weights.safetensors"));
        // float32 weights into the float64 model: widened first (loading is dtype-exact).
        StateDict.Load(model.Transformer, weights.ToDictionary(w => FeedbackTransformer.FromLabmlName(w.Key), w => w.Value.to_type(ScalarType.Float64)), name);
        var io = SafeTensorsTorch.Load(Path.Combine(dir, "io.safetensors"));
        using var _ = no_grad();
        var output = model.Transformer.forward(io["in.x"].to_type(ScalarType.Float64).transpose(0, 1)).transpose(0, 1);
        Assert.True(ParityRunner.RelativeError(output, io["f64.out"]) <= 1e-12, $"relative error {ParityRunner.RelativeError(output, io["f64.out"])}");
    }

    [Fact]
    [Proves("FeedbackTransformer.num_tokens", "FeedbackTransformer.max_seq_len")]
    public void VocabularyAndLongestSequence()
    {
        var model = Build.Model<FeedbackLanguageModel>("""{ "type": "FeedbackTransformer", "num_tokens": 7, "dim": 16, "depth": 1, "heads": 2, "max_seq_len": 6 }""");
        Assert.Equal(7, model.NumTokens);
        Assert.Equal(6, model.MaxSeqLen);
        using var _ = no_grad();
        Assert.Equal(new long[] { 1, 6, 7 }, model.forward(Build.Tokens(1, 7, 1, 6)).shape);
        // A seventh step would attend over 6 earlier ones: more than the relative positions learned.
        Assert.Throws<InvalidOperationException>(() => model.forward(Build.Tokens(1, 7, 1, 7)));
    }
}
