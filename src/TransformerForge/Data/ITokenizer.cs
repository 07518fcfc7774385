namespace TransformerForge.Data;

/// <summary>
/// Maps text to token ids and back. Implementations are immutable and thread-safe, and persist themselves as
/// <c>tokenizer.json</c> in a directory (see <see cref="Tokenizers.Load"/>).
/// </summary>
public interface ITokenizer
{
    /// <summary>Canonical kind name: <c>bytes</c>, <c>chars</c>, <c>cl100k</c> or <c>o200k</c>.</summary>
    string Kind { get; }

    /// <summary>Number of embedding rows a model needs: every id this tokenizer emits is below it.</summary>
    int VocabSize { get; }

    int[] Encode(string text);

    /// <summary>
    /// Appends the ids of <paramref name="text"/> to <paramref name="ids"/>. Streaming tokenization calls this with a
    /// reused list, so implementations that can avoid temporary strings and arrays keep memory flat.
    /// </summary>
    void Encode(ReadOnlySpan<char> text, List<int> ids) => ids.AddRange(Encode(new string(text)));

    string Decode(IEnumerable<int> ids);

    /// <summary>The content of <c>tokenizer.json</c>; also identifies the tokenizer in token-file fingerprints.</summary>
    string ToJson();

    /// <summary>Writes <c>tokenizer.json</c> into <paramref name="directory"/>, creating it if needed.</summary>
    void Save(string directory);
}

/// <summary>
/// A tokenizer whose ids are bytes, so it encodes and decodes any byte sequence exactly, valid UTF-8 or not (a corpus
/// of random bytes gives one token per byte and decodes back to the same bytes). Text datasets feed it the corpus's
/// raw bytes instead of decoded text.
/// </summary>
public interface IByteLevelTokenizer : ITokenizer
{
    /// <summary>Appends one id per byte.</summary>
    void EncodeBytes(ReadOnlySpan<byte> bytes, List<int> ids);

    /// <summary>The bytes the ids stand for.</summary>
    byte[] DecodeBytes(IEnumerable<int> ids);
}
