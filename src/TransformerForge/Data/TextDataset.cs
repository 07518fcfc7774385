using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Data;

/// <summary>
/// A text corpus (one file, or a folder of .txt files concatenated in name order) tokenized once into a
/// <see cref="TokenFile"/> that later opens reuse while the files and tokenizer are unchanged. Tokens are read
/// through a memory map, so the corpus is never loaded whole. The first <see cref="TextDatasetOptions.TrainFraction"/>
/// of the tokens form the training split and the rest the validation split.
/// </summary>
public sealed class TextDataset : IDisposable
{
    readonly TokenFile _tokens;

    TextDataset(string source, IReadOnlyList<string> files, ITokenizer tokenizer, TokenFile tokens, double trainFraction, bool built)
    {
        SourcePath = source;
        Files = files;
        Tokenizer = tokenizer;
        _tokens = tokens;
        Built = built;
        TrainTokens = (long)Math.Floor(tokens.Count * trainFraction);
    }

    /// <summary>
    /// Opens the corpus at <paramref name="path"/>, tokenizing it (streamed in chunks) unless a token file with a
    /// matching fingerprint is cached.
    /// </summary>
    public static TextDataset Open(string path, ITokenizer tokenizer, TextDatasetOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        options ??= new TextDatasetOptions();
        options.Validate();
        var files = CorpusFiles.Resolve(path);
        if (files.All(f => new FileInfo(f).Length == 0)) throw Empty(path, files);

        var fingerprint = Fingerprint(files, tokenizer);
        var cacheDir = options.ResolveCacheDirectory();
        Directory.CreateDirectory(cacheDir);
        var tokenPath = Path.Combine(cacheDir, $"{SafeName(path)}.{tokenizer.Kind}.{Convert.ToHexStringLower(fingerprint, 0, 8)}.tokens");

        var built = false;
        var cached = options.Rebuild ? null : TokenFile.ReadHeader(tokenPath);
        if (cached is null || !cached.Fingerprint.AsSpan().SequenceEqual(fingerprint) || cached.VocabSize != tokenizer.VocabSize || cached.Count == 0)
        {
            Tokenize(path, files, tokenizer, options.ChunkChars, tokenPath, fingerprint);
            built = true;
        }
        var contentHash = ContentHash(path, tokenPath, built);
        return new TextDataset(Path.GetFullPath(path), files, tokenizer, TokenFile.Open(tokenPath), options.TrainFraction, built) { ContentSha256 = contentHash };
    }

    /// <summary>The corpus's <see cref="CorpusFiles.ContentSha256"/>, kept beside the token file so a cached open does not reread the corpus.</summary>
    static string ContentHash(string path, string tokenPath, bool built)
    {
        var side = tokenPath + ".sha256";
        if (!built && File.Exists(side) && File.ReadAllText(side).Trim() is { Length: 64 } cached && cached.All(char.IsAsciiHexDigitLower)) return cached;
        var hash = CorpusFiles.ContentSha256(path);
        File.WriteAllText(side, hash);
        return hash;
    }

    /// <summary>SHA-256 of the corpus content (see <see cref="CorpusFiles.ContentSha256"/>): identifies it wherever it lies.</summary>
    public string ContentSha256 { get; private init; } = "";

    public string SourcePath { get; }
    public IReadOnlyList<string> Files { get; }
    public ITokenizer Tokenizer { get; }
    public string TokenFilePath => _tokens.Path;
    /// <summary>2 when ids are stored as uint16, 4 for int32.</summary>
    public int BytesPerToken => _tokens.BytesPerToken;
    /// <summary>True when this open tokenized the corpus; false when it reused a cached token file.</summary>
    public bool Built { get; }

    public long TokenCount => _tokens.Count;
    public long TrainTokens { get; }
    public long ValidationTokens => _tokens.Count - TrainTokens;

    /// <summary>Where a split lies in the token file.</summary>
    public (long Start, long Length) Range(DataSplit split) => split switch
    {
        DataSplit.Train => (0, TrainTokens),
        DataSplit.Validation => (TrainTokens, ValidationTokens),
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Unknown split."),
    };

    /// <summary>Tokens [start, start + count) of the whole corpus.</summary>
    public int[] ReadTokens(long start, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var result = new int[count];
        _tokens.Read(start, result);
        return result;
    }

    /// <summary>
    /// <paramref name="batchSize"/> windows of <paramref name="seqLen"/> + 1 consecutive tokens at uniformly random
    /// offsets inside <paramref name="split"/>, as an int64 tensor [batchSize, seqLen + 1] (inputs are [:, :-1],
    /// next-token targets [:, 1:]). The same <paramref name="random"/> state gives the same batch.
    /// </summary>
    public Tensor SampleBatch(DataSplit split, int batchSize, int seqLen, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var (start, span) = CheckWindow(split, batchSize, seqLen);
        var offsets = new long[batchSize];
        for (var b = 0; b < batchSize; b++) offsets[b] = start + random.NextInt64(span);
        return Gather(offsets, seqLen + 1);
    }

    /// <summary>As <see cref="SampleBatch(DataSplit,int,int,Random)"/>, drawing offsets from a torch generator (the global one when null).</summary>
    public Tensor SampleBatch(DataSplit split, int batchSize, int seqLen, Generator? generator = null)
    {
        var (start, span) = CheckWindow(split, batchSize, seqLen);
        TorchRuntime.EnsureLoaded();
        using var draws = torch.randint(0, span, [batchSize], dtype: ScalarType.Int64, generator: generator);
        var offsets = draws.data<long>().ToArray();
        for (var b = 0; b < batchSize; b++) offsets[b] += start;
        return Gather(offsets, seqLen + 1);
    }

    /// <summary>Checks the window fits and returns the split start and the number of possible window offsets.</summary>
    (long Start, long Offsets) CheckWindow(DataSplit split, int batchSize, int seqLen)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(seqLen, 1);
        var (start, length) = Range(split);
        long window = seqLen + 1L;
        if (window > length)
            throw new ArgumentOutOfRangeException(nameof(seqLen), seqLen,
                $"seqLen + 1 = {window} tokens is larger than the {split.ToString().ToLowerInvariant()} split of '{SourcePath}' ({length} tokens); " +
                "use a shorter sequence or a larger corpus.");
        return (start, length - window + 1);
    }

    Tensor Gather(long[] offsets, int window)
    {
        var data = new long[offsets.Length * window];
        for (var b = 0; b < offsets.Length; b++) _tokens.Read(offsets[b], data.AsSpan(b * window, window));
        TorchRuntime.EnsureLoaded();
        return torch.tensor(data, [offsets.Length, window], dtype: ScalarType.Int64);
    }

    public void Dispose() => _tokens.Dispose();

    static void Tokenize(string source, IReadOnlyList<string> files, ITokenizer tokenizer, int chunkChars, string tokenPath, byte[] fingerprint)
    {
        using var writer = new TokenFile.Writer(tokenPath, tokenizer.VocabSize, fingerprint);
        var ids = new List<int>(chunkChars);   // reused: per-chunk garbage would let the GC heap grow with the corpus rate
        if (tokenizer is IByteLevelTokenizer bytes)
        {
            // The file's own bytes, not decoded text: invalid UTF-8 and byte-order marks stay exactly as they are.
            var buffer = new byte[chunkChars];
            foreach (var file in files)
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                int read;
                while ((read = stream.Read(buffer)) > 0)
                {
                    ids.Clear();
                    bytes.EncodeBytes(buffer.AsSpan(0, read), ids);
                    writer.Append(CollectionsMarshal.AsSpan(ids));
                }
            }
            if (writer.Count == 0) throw Empty(source, files);
            writer.Complete();
            return;
        }
        foreach (var file in files)
        {
            foreach (var chunk in TextChunker.Read(file, chunkChars))
            {
                ids.Clear();
                try
                {
                    tokenizer.Encode(chunk.Text.Span, ids);
                }
                catch (UnknownCharacterException e)
                {
                    throw new InvalidDataException(
                        $"Corpus file '{file}' has character {UnknownCharacterException.Describe(e.Character)} at character offset " +
                        $"{chunk.Offset + e.Position} that the chars tokenizer cannot encode; build the tokenizer from this corpus " +
                        "(Tokenizers.CreateFromCorpus) or use the 'bytes' tokenizer.", e);
                }
                writer.Append(CollectionsMarshal.AsSpan(ids));
            }
        }
        if (writer.Count == 0) throw Empty(source, files);
        writer.Complete();
    }

    static InvalidDataException Empty(string source, IReadOnlyList<string> files) => files.Count == 1 && File.Exists(source)
        ? new InvalidDataException($"Corpus file '{source}' is empty.")
        : new InvalidDataException($"Corpus folder '{source}' has only empty .txt files ({files.Count}).");

    /// <summary>Identifies the exact input of a token file: tokenizer definition plus each file's path, size and modification time.</summary>
    static byte[] Fingerprint(IReadOnlyList<string> files, ITokenizer tokenizer)
    {
        // v2: byte-level tokenizers read raw bytes (v1 decoded UTF-8 first), so v1 token files are not reused.
        var sb = new StringBuilder("tforge-tokens v2\n").Append(tokenizer.ToJson()).Append('\n');
        foreach (var f in files)
        {
            var info = new FileInfo(f);
            sb.Append(info.FullName).Append('\0').Append(info.Length).Append('\0').Append(info.LastWriteTimeUtc.Ticks).Append('\n');
        }
        return SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString()));
    }

    static string SafeName(string path)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)));
        if (name.Length == 0) name = "corpus";
        var invalid = Path.GetInvalidFileNameChars();
        return new string(name.Select(c => invalid.Contains(c) || char.IsWhiteSpace(c) ? '_' : c).ToArray());
    }
}
