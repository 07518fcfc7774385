namespace TransformerForge.Data;

/// <summary>How a <see cref="TextDataset"/> is tokenized, cached and split.</summary>
/// <param name="CacheDirectory">Where token files go; null means <c>$TFORGE_CACHE/tokens</c>, else
/// <c>$XDG_CACHE_HOME/transformerforge/tokens</c> or <c>~/.cache/transformerforge/tokens</c>.</param>
/// <param name="TrainFraction">Share of the tokens, taken from the start, used for training; the rest validates.</param>
/// <param name="ChunkChars">Characters tokenized at a time; bounds memory while tokenizing (64K keeps each chunk's
/// garbage small, so a 20 MB corpus tokenizes within about 12 MB of extra working set).</param>
/// <param name="Rebuild">Re-tokenize even if a token file with a matching fingerprint exists.</param>
public sealed record TextDatasetOptions(
    string? CacheDirectory = null,
    double TrainFraction = 0.9,
    int ChunkChars = TextDatasetOptions.DefaultChunkChars,
    bool Rebuild = false)
{
    public const int DefaultChunkChars = 1 << 16;

    internal void Validate()
    {
        if (!(TrainFraction > 0 && TrainFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(TrainFraction), TrainFraction, "TrainFraction must be strictly between 0 and 1.");
        if (ChunkChars < 1024)
            throw new ArgumentOutOfRangeException(nameof(ChunkChars), ChunkChars, "ChunkChars must be at least 1024.");
    }

    internal string ResolveCacheDirectory()
    {
        if (!string.IsNullOrWhiteSpace(CacheDirectory)) return CacheDirectory;
        var env = Environment.GetEnvironmentVariable("TFORGE_CACHE");
        if (!string.IsNullOrEmpty(env)) return Path.Combine(env, "tokens");
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var root = !string.IsNullOrEmpty(xdg) ? xdg : !string.IsNullOrEmpty(home) ? Path.Combine(home, ".cache") : Path.GetTempPath();
        return Path.Combine(root, "transformerforge", "tokens");
    }
}
