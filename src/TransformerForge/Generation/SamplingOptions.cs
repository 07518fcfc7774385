namespace TransformerForge.Generation;

/// <summary>
/// How to pick each next token. Filters apply in order: top-k, then top-p (nucleus, Holtzman et al. 2019); then
/// temperature; then sampling (or argmax when <see cref="Greedy"/>). <see cref="EntmaxAlpha"/> samples from
/// α-entmax instead of softmax (x-transformers uses α = 1.3), which gives exact zeros to unlikely tokens.
/// </summary>
public sealed record SamplingOptions
{
    public bool Greedy { get; init; }
    public double Temperature { get; init; } = 1.0;
    public int? TopK { get; init; }
    public double? TopP { get; init; }
    public double? EntmaxAlpha { get; init; }
    /// <summary>Stop a sequence at this token; generation ends when every sequence has produced it.</summary>
    public int? EosToken { get; init; }
    /// <summary>Written after a sequence's end-of-sequence token.</summary>
    public int PadValue { get; init; }
    /// <summary>Use the model's incremental state (KV cache) when it has one; otherwise recompute the window each step.</summary>
    public bool UseCache { get; init; } = true;
    public long? Seed { get; init; }

    public void Validate()
    {
        if (Temperature <= 0 && !Greedy) throw new ArgumentException("temperature must be positive (or use greedy decoding)");
        if (TopK is <= 0) throw new ArgumentException("top_k must be positive");
        if (TopP is <= 0 or > 1) throw new ArgumentException("top_p must be in (0, 1]");
        if (EntmaxAlpha is <= 1) throw new ArgumentException("entmax alpha must be greater than 1");
    }
}
