namespace TransformerForge.Data;

/// <summary>Creates tokenizers by kind name and loads saved ones.</summary>
public static class Tokenizers
{
    /// <summary>The kinds <see cref="Create"/> and <see cref="Load"/> understand.</summary>
    public static IReadOnlyList<string> Kinds { get; } =
        [ByteTokenizer.KindName, CharTokenizer.KindName, TiktokenBpeTokenizer.Cl100k, TiktokenBpeTokenizer.O200k];

    /// <summary>
    /// A tokenizer of the given kind. <paramref name="corpusText"/> is required for <c>chars</c> (its vocabulary is
    /// the corpus's distinct characters) and ignored by the others. The tiktoken names <c>cl100k_base</c> and
    /// <c>o200k_base</c> are accepted as aliases.
    /// </summary>
    public static ITokenizer Create(string kind, string? corpusText = null)
    {
        ArgumentNullException.ThrowIfNull(kind);
        return Canonical(kind) switch
        {
            ByteTokenizer.KindName => ByteTokenizer.Instance,
            CharTokenizer.KindName => corpusText is null
                ? throw new ArgumentException("The chars tokenizer needs corpus text to build its vocabulary.", nameof(corpusText))
                : CharTokenizer.FromCorpus(corpusText),
            var bpe => TiktokenBpeTokenizer.Get(bpe),
        };
    }

    /// <summary>
    /// Like <see cref="Create"/>, but a <c>chars</c> vocabulary is collected by streaming the corpus at
    /// <paramref name="corpusPath"/> (a file, or a folder of .txt files), so a large corpus is never held as one string.
    /// </summary>
    public static ITokenizer CreateFromCorpus(string kind, string corpusPath)
    {
        ArgumentNullException.ThrowIfNull(kind);
        if (Canonical(kind) != CharTokenizer.KindName) return Create(kind);
        var files = CorpusFiles.Resolve(corpusPath);
        var set = new CharTokenizer.CharacterSet();
        foreach (var file in files)
            foreach (var chunk in TextChunker.Read(file, TextDatasetOptions.DefaultChunkChars))
                set.Add(chunk.Text.Span);
        try
        {
            return set.ToTokenizer();
        }
        catch (ArgumentException)
        {
            throw new InvalidDataException($"Corpus '{corpusPath}' is empty: the chars tokenizer needs at least one character.");
        }
    }

    /// <summary>Loads the tokenizer saved in <paramref name="directory"/> (or from a <c>tokenizer.json</c> path).</summary>
    public static ITokenizer Load(string directory)
    {
        var json = TokenizerFile.Read(directory, out var file);
        var kind = TokenizerFile.RequireString(json, "kind", file);
        if (!TryCanonical(kind, out var canonical))
            throw new InvalidDataException($"Tokenizer file '{file}' has unknown kind '{kind}'; known kinds: {string.Join(", ", Kinds)}.");
        if (canonical != CharTokenizer.KindName) return Create(canonical);
        var vocab = TokenizerFile.RequireString(json, "vocab", file);
        try
        {
            return new CharTokenizer(vocab);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"Tokenizer file '{file}' has an invalid chars vocabulary: {e.Message}", e);
        }
    }

    static string Canonical(string kind) => TryCanonical(kind, out var c)
        ? c
        : throw new ArgumentException($"Unknown tokenizer kind '{kind}'; known kinds: {string.Join(", ", Kinds)}.", nameof(kind));

    static bool TryCanonical(string kind, out string canonical)
    {
        canonical = kind.Trim().ToLowerInvariant() switch
        {
            "bytes" or "byte" => ByteTokenizer.KindName,
            "chars" or "char" => CharTokenizer.KindName,
            "cl100k" or "cl100k_base" => TiktokenBpeTokenizer.Cl100k,
            "o200k" or "o200k_base" => TiktokenBpeTokenizer.O200k,
            _ => "",
        };
        return canonical.Length > 0;
    }
}
