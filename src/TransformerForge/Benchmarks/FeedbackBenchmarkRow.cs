namespace TransformerForge.Benchmarks;

/// <summary>
/// One model's figures in <see cref="FeedbackBenchmark"/>. Times are medians over the timed steps (each phase's median
/// on its own, so the phases need not add up to the step). Memory, in MiB of peak RSS growth: over the whole training
/// run (<c>RunPeakMemoryMiB</c>), and during one more step started from a trimmed heap (<c>StepPeakMemoryMiB</c>).
/// </summary>
public sealed record FeedbackBenchmarkRow(
    FeedbackBenchmarkModel Model,
    int Depth,
    long Parameters,
    double TrainTokensPerSecond,
    double StepSeconds,
    double ForwardSeconds,
    double BackwardSeconds,
    double OptimizerSeconds,
    double GenerateTokensPerSecond,
    double RunPeakMemoryMiB,
    double StepPeakMemoryMiB,
    string MemoryMethod)
{
    public string Name => FeedbackBenchmark.NameOf(Model);
}
