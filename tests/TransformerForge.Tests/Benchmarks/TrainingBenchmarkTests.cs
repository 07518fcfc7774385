using TransformerForge.Benchmarks;
using TransformerForge.Config;
using TransformerForge.Tests.Data;

namespace TransformerForge.Tests.Benchmarks;

/// <summary>The benchmarks run end to end at a tiny size and report what they claim (no timing is asserted).</summary>
[Collection(nameof(MemoryMeasurement))]
public class TrainingBenchmarkTests
{
    static TransformerWrapperConfig Tiny(int maxSeqLen) => (TransformerWrapperConfig)ModelPresets.Create(ModelPresets.Vanilla, 16, maxSeqLen, 16, 1, 2);

    [Theory]
    [InlineData("fp32", true)]
    [InlineData("fp32", false)]
    [InlineData("bf16", true)]
    public void TrainReportsMediansOfPhasesAndAResultLine(string precision, bool flat)
    {
        var result = TrainingBenchmark.Run(new TrainingBenchmarkOptions
        {
            Model = Tiny(8), Batch = 2, SeqLen = 8, WarmupSteps = 1, Steps = 3, Precision = precision, FlatOptimizer = flat,
        }, "tiny");
        Assert.True(result.ForwardSeconds > 0 && result.BackwardSeconds > 0 && result.OptimizerSeconds > 0);
        Assert.Equal(2 * 8 / result.StepSeconds, result.TokensPerSecond, 6);
        Assert.True(double.IsFinite(result.FinalLoss));
        Assert.Equal(precision, result.Precision);
        Assert.Equal(flat, result.FlatOptimizer);
        var line = result.ResultLine();
        foreach (var key in new[] { "stack=tforge", "workload=train", "step_ms=", "fwd_ms=", "bwd_ms=", "opt_ms=", "tokens_per_s=", "peak_rss_mib=", "step_cpu_ms=", "fwd_cpu_ms=", "bwd_cpu_ms=", "opt_cpu_ms=" })
            Assert.Contains(key, line);
        // CPU time per phase (the work, which a busy machine distorts less than wall-clock): measured, and within the step's.
        var cpu = result.Cpu!;
        Assert.True(cpu.Forward > 0 && cpu.Backward > 0 && cpu.Step >= cpu.Forward);
    }

    [Fact]
    public void GenerateTimesBothPathsAndTheyAgree()
    {
        var rows = GenerationBenchmark.Run(new GenerationBenchmarkOptions { Model = Tiny(32), PromptLength = 3, NewTokens = 10, Repeats = 2 });
        Assert.Equal(new[] { "kv-cache", "recompute" }, rows.Select(r => r.Name));
        Assert.All(rows, r => Assert.Equal("", r.Note));
        Assert.All(rows, r => Assert.True(r.TokensPerSecond > 0));
        Assert.Contains("tokens_per_s=", rows[0].ResultLine("tforge", "tiny", "cpu", 10, 2));
        Assert.All(rows, r => Assert.True(r.CpuSeconds > 0));
        Assert.Contains("cpu_ms_per_token=", rows[0].ResultLine("tforge", "tiny", "cpu", 10, 2));
    }
}
