using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;

namespace TransformerForge.Data;

/// <summary>
/// OpenAI's byte-level BPE vocabularies (<c>cl100k</c>, <c>o200k</c>) via Microsoft.ML.Tokenizers; the merge tables
/// ship in the Microsoft.ML.Tokenizers.Data.* packages, so nothing is downloaded.
/// </summary>
public sealed class TiktokenBpeTokenizer : ITokenizer
{
    public const string Cl100k = "cl100k";
    public const string O200k = "o200k";

    // Loading a merge table takes a noticeable fraction of a second, and the tokenizer is thread-safe: share one per encoding.
    static readonly Lazy<TiktokenBpeTokenizer> Cl100kInstance = new(() => new TiktokenBpeTokenizer(Cl100k, "cl100k_base"));
    static readonly Lazy<TiktokenBpeTokenizer> O200kInstance = new(() => new TiktokenBpeTokenizer(O200k, "o200k_base"));

    readonly TiktokenTokenizer _inner;

    TiktokenBpeTokenizer(string kind, string encoding)
    {
        Kind = kind;
        _inner = TiktokenTokenizer.CreateForEncoding(encoding);
        // The special tokens (e.g. <|endoftext|>) have the highest ids, above every merge rank, so the largest one
        // bounds the vocabulary: 100277 for cl100k and 200019 for o200k, as tiktoken's n_vocab.
        VocabSize = _inner.SpecialTokens is { Count: > 0 } special
            ? special.Values.Max() + 1
            : throw new InvalidOperationException($"The {encoding} data has no special tokens; cannot size its vocabulary.");
    }

    /// <summary>The shared tokenizer for <c>cl100k</c> or <c>o200k</c>.</summary>
    public static TiktokenBpeTokenizer Get(string kind) => kind switch
    {
        Cl100k => Cl100kInstance.Value,
        O200k => O200kInstance.Value,
        _ => throw new ArgumentException($"Unknown BPE encoding '{kind}'; known: {Cl100k}, {O200k}.", nameof(kind)),
    };

    public string Kind { get; }
    public int VocabSize { get; }

    /// <summary>
    /// A run of more than this many characters of one kind (letters, digits, whitespace, other) is cut into pieces of
    /// this length before encoding. Pre-tokenization makes such a run one piece, and both the pre-tokenizer's regular
    /// expression and byte-pair merging are superlinear in a piece's length (5 MB of text without spaces took 83 s
    /// against 5 s for prose). No cl100k or o200k token is this long, so only runs this long can encode differently
    /// from tiktoken, and only around the cuts.
    /// </summary>
    public const int MaxRun = 256;

    /// <summary>Special-token strings such as <c>&lt;|endoftext|&gt;</c> in the text encode to their special ids.</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 1);
        Encode(text, ids);
        return [.. ids];
    }

    public void Encode(ReadOnlySpan<char> text, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        int segment = 0, runStart = 0, i = 0;
        var runKind = RunKind.None;
        while (i < text.Length)
        {
            Rune.DecodeFromUtf16(text[i..], out var rune, out int length);
            var kind = KindOf(rune);
            if (kind != runKind) (runKind, runStart) = (kind, i);
            else if (i - runStart >= MaxRun)
            {
                ids.AddRange(_inner.EncodeToIds(text[segment..i]));
                segment = runStart = i;
            }
            i += length;
        }
        if (segment < text.Length) ids.AddRange(_inner.EncodeToIds(text[segment..]));
    }

    enum RunKind { None, Letter, Number, Space, Other }

    static RunKind KindOf(Rune r) => Rune.IsLetter(r) ? RunKind.Letter : Rune.IsNumber(r) ? RunKind.Number : Rune.IsWhiteSpace(r) ? RunKind.Space : RunKind.Other;

    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids as IReadOnlyList<int> ?? ids.ToList();
        for (var i = 0; i < list.Count; i++)
            if ((uint)list[i] >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), list[i], $"Token id {list[i]} at position {i} is outside the {Kind} vocabulary [0, {VocabSize}).");
        return _inner.Decode(list);
    }

    public string ToJson() => TokenizerFile.Format(new JsonObject { ["kind"] = Kind });

    public void Save(string directory) => TokenizerFile.Write(directory, ToJson());
}
