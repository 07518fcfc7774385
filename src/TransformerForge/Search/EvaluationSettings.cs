using System.Text.Json;
using System.Text.Json.Nodes;
using TransformerForge.Training;

namespace TransformerForge.Search;

/// <summary>
/// How every trial of a study is evaluated: on which data, for what budget (optimizer steps, or seconds of training),
/// with which training options, which metrics, and the hard bounds on the child process that runs it (wall time and
/// resident memory). Stored in the study, so all workers evaluate alike.
/// </summary>
public sealed record EvaluationSettings
{
    public required TrainingDataSpec Data { get; init; }
    /// <summary>Metrics to report (objectives and constraints); params and FLOPs are always reported, being free.</summary>
    public required IReadOnlyList<string> Metrics { get; init; }
    /// <summary>Optimizer steps of a full-budget trial (exclusive with <see cref="BudgetSeconds"/>).</summary>
    public int? BudgetSteps { get; init; }
    /// <summary>Seconds of training of a full-budget trial; the learning rate stays at its peak after warmup.</summary>
    public double? BudgetSeconds { get; init; }
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 1e-3;
    public int WarmupSteps { get; init; } = 50;
    public double WeightDecay { get; init; } = 0.01;
    public double GradClip { get; init; } = 1.0;
    public int EvalBatches { get; init; } = 8;
    /// <summary>Torch threads in a trial; null: 1 for synthetic tasks (tiny models), torch's default for text.</summary>
    public int? Threads { get; init; }
    /// <summary>Forward passes timed for <c>latency_ms</c> (the median is reported).</summary>
    public int LatencyRepeats { get; init; } = 5;
    /// <summary>Tokens generated for <c>generation_tokens_per_s</c>.</summary>
    public int GenerationTokens { get; init; } = 64;
    /// <summary>A trial running longer than this is killed and marked failed; 0 = no limit.</summary>
    public double TrialTimeoutSeconds { get; init; }
    /// <summary>A trial whose resident memory grows past this is killed and marked failed; 0 = no limit.</summary>
    public double TrialMemoryMiB { get; init; }

    public bool NeedsTraining => Metrics.Any(m => Search.Metrics.Get(m).NeedsTraining);

    public void Validate()
    {
        foreach (var m in Metrics) Search.Metrics.Get(m);
        if (NeedsTraining && (BudgetSteps is null) == (BudgetSeconds is null))
            throw new SearchException("give the training budget of a trial as steps or as seconds (one of them)");
        if (BudgetSteps is < 1) throw new SearchException($"the budget in steps must be at least 1, got {BudgetSteps}");
        if (BudgetSeconds is { } s && !(s > 0 && double.IsFinite(s))) throw new SearchException($"the budget in seconds must be positive, got {s}");
        if (BatchSize < 1) throw new SearchException($"batch size must be at least 1, got {BatchSize}");
        if (!(LearningRate > 0 && double.IsFinite(LearningRate))) throw new SearchException($"learning rate must be positive, got {LearningRate}");
        if (WarmupSteps < 0) throw new SearchException($"warmup steps must not be negative, got {WarmupSteps}");
        if (EvalBatches < 1) throw new SearchException($"eval batches must be at least 1, got {EvalBatches}");
        if (Threads is < 1) throw new SearchException($"threads must be at least 1, got {Threads}");
        if (LatencyRepeats < 1) throw new SearchException($"latency repeats must be at least 1, got {LatencyRepeats}");
        if (GenerationTokens < 1) throw new SearchException($"generation tokens must be at least 1, got {GenerationTokens}");
        if (TrialTimeoutSeconds < 0 || TrialMemoryMiB < 0) throw new SearchException("trial time and memory limits must not be negative");
        bool task = Data.Kind == TrainingDataSpec.TaskKind;
        if (Metrics.Contains(Search.Metrics.ExactMatch) && !task) throw new SearchException("exact_match needs a synthetic task (--task), not text");
        if ((Metrics.Contains(Search.Metrics.BitsPerChar) || Metrics.Contains(Search.Metrics.BitsPerByte)) && task)
            throw new SearchException("bits per character/byte need text data (--data), not a task");
        if (Metrics.Contains(Search.Metrics.BitsPerChar) && Data.Tokenizer is not "chars")
            throw new SearchException($"bits_per_char needs the chars tokenizer (one token per character), not {Data.Tokenizer}");
        if (Metrics.Contains(Search.Metrics.BitsPerByte) && Data.Tokenizer is not "bytes")
            throw new SearchException($"bits_per_byte needs the bytes tokenizer (one token per byte), not {Data.Tokenizer}");
    }

    public JsonObject ToJson() => JsonSerializer.SerializeToNode(this, StudyJson.Options)!.AsObject();

    public static EvaluationSettings FromJson(JsonObject o) =>
        o.Deserialize<EvaluationSettings>(StudyJson.Options) ?? throw new InvalidDataException("empty evaluation settings");
}

/// <summary>What a trial process is asked to do: train and measure one model under the study's settings and the trial's plan.</summary>
public sealed record TrialRequest
{
    public required JsonObject Spec { get; init; }
    public required EvaluationSettings Settings { get; init; }
    public required TrialPlan Plan { get; init; }
    /// <summary>The primary objective's metric (what hurdles compare).</summary>
    public required string PrimaryMetric { get; init; }
    /// <summary>Where the trial trains and is measured: the worker's device (cpu, cuda, cuda:N), not the study's — each
    /// worker of a study may use its own GPU.</summary>
    public string Device { get; init; } = "cpu";

    public string ToJsonString() => JsonSerializer.Serialize(this, StudyJson.Options);

    public static TrialRequest Parse(string json) =>
        IO.StrictJson.Deserialize<TrialRequest>(json, StudyJson.Options);
}
