using TransformerForge.Benchmarks;
using TransformerForge.Tests.Data;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Benchmarks;

/// <summary>Runs alone: the benchmark reads (and resets) the process's peak memory.</summary>
[Collection(nameof(MemoryMeasurement))]
public class FeedbackBenchmarkTests(ITestOutputHelper output)
{
    [Fact]
    public void RunsEndToEndAtATinySize()
    {
        // dim / heads = 32: the decoder's rotary positions need heads of at least 32 dimensions.
        var options = new FeedbackBenchmarkOptions
        {
            Dim = 64, Heads = 2, FfInnerDim = 64, Depth = 2, SeqLen = 8, Batch = 2, WarmupSteps = 1, Steps = 2,
            PromptLength = 3, NewTokens = 5, GenerationRepeats = 1,
        };

        // One thread: on a busy machine, libtorch's threads wait on each other at every tiny op (seconds per step).
        var threads = get_num_threads();
        set_num_threads(1);
        IReadOnlyList<FeedbackBenchmarkRow> rows;
        try
        {
            rows = FeedbackBenchmark.Run(CPU, options, output.WriteLine);
        }
        finally
        {
            set_num_threads(threads);
        }

        Assert.Equal(Enum.GetValues<FeedbackBenchmarkModel>(), rows.Select(r => r.Model));
        foreach (var row in rows)
        {
            Assert.True(row.Parameters > 0, row.Name);
            Assert.True(row.TrainTokensPerSecond > 0 && double.IsFinite(row.TrainTokensPerSecond), row.Name);
            Assert.True(row.StepSeconds > 0 && row.ForwardSeconds > 0 && row.BackwardSeconds > 0 && row.OptimizerSeconds > 0, row.Name);
            Assert.True(row.GenerateTokensPerSecond > 0 && double.IsFinite(row.GenerateTokensPerSecond), row.Name);
            // Growth over a baseline: zero when a tiny model fits in memory already resident.
            if (OperatingSystem.IsLinux()) Assert.True(row.RunPeakMemoryMiB >= 0 && row.StepPeakMemoryMiB >= 0, row.Name);
        }
        var table = FeedbackBenchmark.Table(rows).ToList();
        foreach (var line in table) output.WriteLine(line);
        Assert.Contains(table, line => line.Contains("feedback-kv / feedback: training"));
        Assert.Contains(table, line => line.Contains("feedback / decoder: training"));
    }

    [Fact]
    public void ModelNamesRoundTrip()
    {
        foreach (var model in Enum.GetValues<FeedbackBenchmarkModel>())
            Assert.Equal(model, FeedbackBenchmark.Parse(FeedbackBenchmark.NameOf(model)));
        Assert.Throws<ArgumentException>(() => FeedbackBenchmark.Parse("encoder"));
    }
}
