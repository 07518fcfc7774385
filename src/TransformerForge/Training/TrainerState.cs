using System.Text.Json;
using System.Text.Json.Serialization;
using TransformerForge.IO;

namespace TransformerForge.Training;

/// <summary>
/// <c>trainer_state.json</c> in a checkpoint: where the run stands (completed steps, the options it runs with, the
/// schedule's next rate, time and tokens so far, the last evaluation). The batch RNG is derived from (seed, step), so
/// the step is all a resumed run needs to draw the same batches; the torch RNG is saved beside it in <c>rng.safetensors</c>.
/// </summary>
public sealed record TrainerState
{
    public const string FileName = "trainer_state.json";
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;
    /// <summary>Completed optimizer steps.</summary>
    public int Step { get; init; }
    public TrainOptions Options { get; init; } = new();
    public LearningRateSchedule? Schedule { get; init; }
    /// <summary>The rate the next step will use (for people reading the file).</summary>
    public double NextLearningRate { get; init; }
    public double ElapsedSeconds { get; init; }
    public long TokensSeen { get; init; }
    public EvaluationMetrics? LastEvaluation { get; init; }
    /// <summary>fp16 runs: the dynamic loss scale and the clean steps since it last changed.</summary>
    public double? LossScale { get; init; }
    public int LossScaleGoodSteps { get; init; }
    /// <summary>The CPU thread count the run computes with (a resumed run keeps it; see <c>ThreadPolicy.ForRun</c>); null in older checkpoints.</summary>
    public int? Threads { get; init; }

    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public void Save(string directory) => File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Json));

    public static TrainerState Load(string directory)
    {
        var file = Path.Combine(directory, FileName);
        if (!File.Exists(file)) throw new FileNotFoundException($"'{directory}' is not a checkpoint: {FileName} is missing", file);
        TrainerState state;
        try
        {
            state = StrictJson.Deserialize<TrainerState>(File.ReadAllBytes(file), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file} is not a valid trainer state: {e.Message}", e);
        }
        state.Check(file);
        return state;
    }

    /// <summary>Every field in its range, and the parts agreeing with each other; names the file and field otherwise.</summary>
    void Check(string file)
    {
        void Require(bool ok, string field, string problem)
        {
            if (!ok) throw new InvalidDataException($"{file}: {field} {problem}");
        }
        Require(Format == CurrentFormat, "format", $"is {Format}; this version reads format {CurrentFormat}");
        Require(Step >= 0, "step", $"must not be negative, got {Step}");
        Require(double.IsFinite(ElapsedSeconds) && ElapsedSeconds is >= 0 and < 1e12, "elapsed_seconds", $"must be a non-negative number of seconds, got {ElapsedSeconds}");
        Require(TokensSeen >= 0, "tokens_seen", $"must not be negative, got {TokensSeen}");
        Require(double.IsFinite(NextLearningRate) && NextLearningRate >= 0, "next_learning_rate", $"must be a non-negative number, got {NextLearningRate}");
        Require(LossScale is null || double.IsFinite(LossScale.Value) && LossScale > 0, "loss_scale", $"must be a positive number, got {LossScale}");
        Require(LossScaleGoodSteps >= 0, "loss_scale_good_steps", $"must not be negative, got {LossScaleGoodSteps}");
        Require(Options is not null, "options", "are missing");
        try { Options!.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{file}: {e.Message}"); }
        if (Schedule is { } s)
        {
            Require(double.IsFinite(s.Peak) && s.Peak > 0 && s.WarmupSteps >= 0 && s.TotalSteps > 0 && s.MinRatio is >= 0 and <= 1,
                "schedule", $"is not a valid learning-rate schedule: {s}");
            Require(s == LearningRateSchedule.From(Options!) with { TotalSteps = s.TotalSteps }, "schedule",
                $"disagrees with the options it was saved with ({s} against learning_rate {Options!.LearningRate}, warmup_steps {Options.WarmupSteps}, min_lr_ratio {Options.MinLrRatio})");
        }
        if (LastEvaluation is { } last)
            Require(last.Step <= Step && last.Step >= 0, "last_evaluation.step", $"is {last.Step}, not between 0 and the checkpoint's step {Step}");
    }

    /// <summary>The schedule the run follows: the saved one (older checkpoints: rebuilt from the options).</summary>
    [JsonIgnore]
    public LearningRateSchedule EffectiveSchedule => Schedule ?? LearningRateSchedule.From(Options);
}
