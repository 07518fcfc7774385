using System.Text.Json;
using System.Text.Json.Serialization;

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
        TrainerState? state;
        try
        {
            state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(file), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file} is not a valid trainer state: {e.Message}", e);
        }
        if (state is null) throw new InvalidDataException($"{file} is empty");
        if (state.Format != CurrentFormat) throw new InvalidDataException($"{file} has format {state.Format}; this version reads format {CurrentFormat}");
        if (state.Step < 0) throw new InvalidDataException($"{file}: step must not be negative, got {state.Step}");
        state.Options.Validate();
        return state;
    }
}
