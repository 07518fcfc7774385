namespace TransformerForge.Benchmarks;

/// <summary>The models <see cref="FeedbackBenchmark"/> compares.</summary>
public enum FeedbackBenchmarkModel
{
    /// <summary>x-transformers Decoder (<c>TransformerWrapper</c>) of the same width, heads, depth and FFN width.</summary>
    Decoder,
    /// <summary>Feedback Transformer as in Fan et al. 2020: every layer projects the memory to its own keys and values.</summary>
    FeedbackOriginal,
    /// <summary>Feedback Transformer whose keys and values are projected once per step and shared by all layers.</summary>
    FeedbackSharedKv,
}

/// <summary>Sizes and step counts of <see cref="FeedbackBenchmark"/>; the defaults are the small CPU setting.</summary>
public sealed record FeedbackBenchmarkOptions
{
    public int Vocabulary { get; init; } = 256;
    public int Dim { get; init; } = 128;
    public int Heads { get; init; } = 4;
    /// <summary>Feed-forward hidden width (labml's d_ff).</summary>
    public int FfInnerDim { get; init; } = 256;
    public int Depth { get; init; } = 2;

    /// <summary>Positions per training sequence (the model sees <c>SeqLen</c> inputs and predicts as many targets).</summary>
    public int SeqLen { get; init; } = 128;
    public int Batch { get; init; } = 8;
    public int WarmupSteps { get; init; } = 3;
    public int Steps { get; init; } = 10;

    /// <summary>Generation: greedy, cached, batch 1, <c>NewTokens</c> after a random prompt of <c>PromptLength</c>.</summary>
    public int PromptLength { get; init; } = 16;
    public int NewTokens { get; init; } = 256;
    /// <summary>Timed generations per model (after one short warm-up); the median is reported.</summary>
    public int GenerationRepeats { get; init; } = 3;

    /// <summary>The Decoder's positions: rotary or absolute.</summary>
    public string Positions { get; init; } = "rotary";

    /// <summary>
    /// Relative positions the Feedback Transformer learns (labml uses 4096). Null: just enough for the benchmark's
    /// longest memory, so that the position tables are not mostly unused rows that AdamW still updates.
    /// </summary>
    public int? MaxMemory { get; init; }

    public IReadOnlyList<FeedbackBenchmarkModel> Models { get; init; } = Enum.GetValues<FeedbackBenchmarkModel>();
    public int Seed { get; init; }

    /// <summary>The longest memory the Feedback Transformer needs here: a training sequence, or prompt plus generation.</summary>
    public int NeededMemory => Math.Max(SeqLen, PromptLength + NewTokens);

    public void Validate()
    {
        if (Vocabulary < 2 || Dim < 1 || Heads < 1 || FfInnerDim < 1 || Depth < 1)
            throw new ArgumentException("vocabulary, dim, heads, feed-forward width and depth must be positive (vocabulary at least 2)");
        if (Dim % Heads != 0) throw new ArgumentException($"dim {Dim} is not divisible by {Heads} heads");
        if (SeqLen < 1 || Batch < 1 || WarmupSteps < 0 || Steps < 1)
            throw new ArgumentException("sequence length, batch and steps must be positive, warm-up steps not negative");
        if (PromptLength < 1 || NewTokens < 1 || GenerationRepeats < 1)
            throw new ArgumentException("prompt length, new tokens and generation repeats must be positive");
        if (Positions is not ("rotary" or "absolute"))
            throw new ArgumentException($"unknown positions '{Positions}' (rotary or absolute)");
        if (MaxMemory is { } m && m < NeededMemory)
            throw new ArgumentException($"max memory {m} is shorter than the {NeededMemory} steps the benchmark needs");
        if (Models.Count == 0) throw new ArgumentException("no model to benchmark");
    }
}
