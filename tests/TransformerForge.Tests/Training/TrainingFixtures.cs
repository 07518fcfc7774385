using TransformerForge.Config;
using TransformerForge.Data;
using TransformerForge.Training;
using TransformerForge.Tests.Data;

namespace TransformerForge.Tests.Training;

/// <summary>Tiny models, data and options that train in well under a second per step on a CPU.</summary>
internal static class TrainingFixtures
{
    /// <summary>copy of 5 symbols: vocab 11, inputs of 10 tokens.</summary>
    public static SyntheticTaskData CopyTask() =>
        new(SyntheticTasks.Create(SyntheticTasks.Copy, new SyntheticTaskOptions(Length: 5)),
            TrainingDataSpec.ForTask(SyntheticTasks.Copy, new SyntheticTaskOptions(Length: 5)));

    public static TransformerWrapperConfig TinyDecoder(int numTokens = 11, int maxSeqLen = 16, double dropout = 0) => new()
    {
        NumTokens = numTokens,
        MaxSeqLen = maxSeqLen,
        AttnLayers = new AttentionLayersConfig
        {
            Type = LayerStackType.Decoder, Dim = 16, Depth = 1, Heads = 2,
            Attn = new AttentionOptions { DimHead = 8, Dropout = dropout }, Ff = new FeedForwardOptions { Dropout = dropout, Mult = 2 },
        },
    };

    public static TrainOptions TinyOptions(string? outDir = null) => new()
    {
        Steps = 12,
        BatchSize = 8,
        LearningRate = 3e-3,
        WarmupSteps = 3,
        EvalEvery = 0,
        EvalBatches = 2,
        SampleEvery = 0,
        LogEvery = 1,
        CheckpointEvery = 0,
        Seed = 7,
        OutDir = outDir,
    };

    /// <summary>A tiny copy-task run of <paramref name="steps"/> steps in <c>run/</c> under <paramref name="tmp"/> (checkpoint at the end).</summary>
    public static string TrainTiny(TempDir tmp, int steps = 4, int evalEvery = 0)
    {
        var run = Path.Combine(tmp.Path, "run");
        using var data = CopyTask();
        using var trainer = Trainer.Create(TinyDecoder(), data, TinyOptions(run) with { Steps = steps, EvalEvery = evalEvery });
        trainer.Run();
        return run;
    }
}

/// <summary>Records what a run reports.</summary>
internal sealed class RecordingObserver : ITrainingObserver
{
    public List<StepReport> Steps { get; } = new();
    public List<EvaluationMetrics> Evaluations { get; } = new();
    public List<string> Samples { get; } = new();
    public List<int> Checkpoints { get; } = new();

    public void OnStep(StepReport report) => Steps.Add(report);
    public void OnEvaluation(EvaluationMetrics metrics) => Evaluations.Add(metrics);
    public void OnSamples(int step, IReadOnlyList<string> samples) => Samples.AddRange(samples);
    public void OnCheckpoint(int step, string path) => Checkpoints.Add(step);
}
