namespace TransformerForge.Search;

public enum Direction { Minimize, Maximize }

/// <summary>A named measurement of a trial: what it means, which way is better, whether it needs training.</summary>
public sealed record MetricInfo(string Name, Direction Direction, bool NeedsTraining, string Description);

/// <summary>The metrics a trial can report, by name. Objectives and constraints name them.</summary>
public static class Metrics
{
    public const string ValLoss = "val_loss";
    public const string BitsPerChar = "bits_per_char";
    public const string BitsPerByte = "bits_per_byte";
    public const string ExactMatch = "exact_match";
    public const string Params = "params";
    public const string NonEmbeddingParams = "non_embedding_params";
    public const string FlopsPerToken = "flops_per_token";
    public const string LatencyMs = "latency_ms";
    public const string GenerationTokensPerSecond = "generation_tokens_per_s";
    public const string PeakMemoryMiB = "peak_memory_mib";

    public static IReadOnlyList<MetricInfo> All { get; } =
    [
        new(ValLoss, Direction.Minimize, true, "validation loss (nats/token) after the training budget"),
        new(BitsPerChar, Direction.Minimize, true, "validation bits per character (text with the chars tokenizer)"),
        new(BitsPerByte, Direction.Minimize, true, "validation bits per byte (text with the bytes tokenizer)"),
        new(ExactMatch, Direction.Maximize, true, "fraction of held-out task examples answered exactly (synthetic tasks)"),
        new(Params, Direction.Minimize, false, "parameters of the built model"),
        new(NonEmbeddingParams, Direction.Minimize, false, "parameters less token/position embeddings and the output projection"),
        new(FlopsPerToken, Direction.Minimize, false, "analytic forward FLOPs per token at the full context (ModelCost)"),
        new(LatencyMs, Direction.Minimize, false, "forward latency of one full-length sequence (median, ms)"),
        new(GenerationTokensPerSecond, Direction.Maximize, false, "greedy generation speed, tokens/s (KV cache where the model has one)"),
        new(PeakMemoryMiB, Direction.Minimize, true, "peak resident memory growth while training (MiB)"),
    ];

    public static MetricInfo Get(string name) => All.FirstOrDefault(m => m.Name == name)
        ?? throw new SearchException($"unknown metric '{name}'; known: {string.Join(", ", All.Select(m => m.Name))}");
}

/// <summary>A metric to optimise, in its direction. The first objective of a study is its primary one.</summary>
public sealed record Objective(string Metric, Direction Direction)
{
    public static Objective Of(string metric) => new(metric, Metrics.Get(metric).Direction);

    /// <summary>The value turned so that lower is better.</summary>
    public double Loss(double value) => Direction == Direction.Minimize ? value : -value;

    /// <summary>Whether <paramref name="a"/> is strictly better than <paramref name="b"/>.</summary>
    public bool Better(double a, double b) => Loss(a) < Loss(b);

    public override string ToString() => $"{Metric} ({(Direction == Direction.Minimize ? "min" : "max")})";
}
