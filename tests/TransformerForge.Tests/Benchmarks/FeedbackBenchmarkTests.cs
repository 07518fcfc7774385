using TorchSharp;
using TransformerForge.Benchmarks;

namespace TransformerForge.Tests.Benchmarks;

public class FeedbackBenchmarkTests
{
    [Fact]
    public void RunsEndToEndWithTinySizes()
    {
        var options = new FeedbackBenchmarkOptions
        {
            DModel = 64, Heads = 2, DFf = 32, Layers = 2, SeqLen = 8, Batch = 2, WarmupSteps = 1, Steps = 2,
            PromptLength = 2, NewTokens = 4, GenerationRepeats = 1,
        };
        var rows = FeedbackBenchmark.Run(torch.CPU, options);
        Assert.Equal(3, rows.Count);
        Assert.All(rows, r =>
        {
            Assert.True(r.TrainTokensPerSecond > 0, r.Name);
            Assert.True(r.GenerateTokensPerSecond > 0, r.Name);
            Assert.True(r.Parameters > 0, r.Name);
        });
        Assert.NotEmpty(FeedbackBenchmark.Table(rows));
    }
}
