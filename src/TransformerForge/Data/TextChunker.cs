using System.Text;

namespace TransformerForge.Data;

/// <summary>A piece of a text file and where it starts, in UTF-16 code units from the start of the file's text.</summary>
public readonly record struct TextChunk(ReadOnlyMemory<char> Text, long Offset);

/// <summary>
/// Streams a text file in chunks of bounded size. Chunks end where tokenization cannot straddle the cut, so encoding
/// chunk by chunk gives the same ids as encoding the whole text: preferably after a newline that is followed by a
/// non-space (no BPE pre-token spans that), else before a space that follows a non-space (a word's leading space
/// starts a new pre-token), else anywhere but inside a surrogate pair (only for lines longer than a chunk).
/// </summary>
public static class TextChunker
{
    /// <summary>Chunks of at most <paramref name="chunkChars"/> chars. The memory of a chunk is reused by the next one.</summary>
    public static IEnumerable<TextChunk> Read(string file, int chunkChars)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkChars, 16);
        using var reader = new StreamReader(file, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        var buffer = new char[chunkChars];
        var length = 0;
        long offset = 0;
        while (true)
        {
            var read = reader.ReadBlock(buffer, length, buffer.Length - length);
            length += read;
            if (length == 0) yield break;
            var end = length < buffer.Length ? length : Cut(buffer, length);
            yield return new TextChunk(buffer.AsMemory(0, end), offset);
            offset += end;
            Array.Copy(buffer, end, buffer, 0, length - end);
            length -= end;
            if (read == 0 && length == 0) yield break;
        }
    }

    static int Cut(char[] s, int length)
    {
        var half = length / 2;
        for (var i = length - 2; i >= half; i--)
            if (s[i] == '\n' && !char.IsWhiteSpace(s[i + 1])) return i + 1;
        for (var i = length - 1; i > half; i--)
            if (s[i] == ' ' && !char.IsWhiteSpace(s[i - 1])) return i;
        return char.IsHighSurrogate(s[length - 1]) ? length - 1 : length;
    }
}
