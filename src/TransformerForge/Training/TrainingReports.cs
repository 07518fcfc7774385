namespace TransformerForge.Training;

/// <summary>What a run is about to do.</summary>
public sealed record TrainingStart(int StartStep, int TotalSteps, long ParameterCount, string Data, string Device, string? OutDir);

/// <summary>
/// After each optimizer step. <see cref="Step"/> counts completed steps (1 after the first update). Reports are
/// delivered in order, in bursts: the loss and gradient norm stay on the device until a log step (or an evaluation,
/// checkpoint or the end) reads them all at once, so the device never waits for the host between steps.
/// </summary>
/// <param name="IsLogStep">A multiple of <see cref="TrainOptions.LogEvery"/> (or the last step): worth a log line.</param>
/// <param name="LossScale">fp16 runs: the loss scale after this step (halved when its gradients overflowed and the step was skipped).</param>
/// <param name="TokensPerSecond">Input tokens per second of training compute, over the steps since the last log step.</param>
/// <param name="Eta">Time left at the average pace of this session so far (evaluations included).</param>
public sealed record StepReport(int Step, int TotalSteps, double Loss, double LearningRate, double GradNorm,
    double TokensPerSecond, TimeSpan Elapsed, TimeSpan Eta, bool IsLogStep, double? LossScale = null);

/// <summary>An evaluation on the validation split or the held-out problems.</summary>
/// <param name="BitsPerUnit">loss / ln 2 when one token is one byte or character (see <see cref="Unit"/>).</param>
/// <param name="ExactMatch">Fraction of held-out examples whose whole answer is right (tasks only).</param>
public sealed record EvaluationMetrics(int Step, double Loss, double Perplexity, double? BitsPerUnit, string? Unit,
    double? ExactMatch, int Examples);

/// <summary>Why <see cref="Trainer.Run"/> returned.</summary>
public enum StopReason { Completed, TargetReached, StopRequested }

/// <summary>The outcome of <see cref="Trainer.Run"/>.</summary>
public sealed record TrainingResult(int Step, StopReason Reason, EvaluationMetrics? LastEvaluation, TimeSpan Elapsed,
    double TokensPerSecond, string? CheckpointPath);

/// <summary>Receives a run's progress; the CLI renders it, tests record it. Every method is optional.</summary>
public interface ITrainingObserver
{
    void OnStart(TrainingStart start) { }
    void OnStep(StepReport report) { }
    void OnEvaluation(EvaluationMetrics metrics) { }
    void OnSamples(int step, IReadOnlyList<string> samples) { }
    void OnCheckpoint(int step, string path) { }
}

/// <summary>Raised when the loss or the gradient norm stops being a finite number.</summary>
public sealed class NonFiniteLossException(int step, string what, double value)
    : Exception($"training stopped at step {step}: the {what} is {value} (try a lower learning rate, more warmup or gradient clipping)")
{
    public int Step { get; } = step;
    public double Value { get; } = value;
}
