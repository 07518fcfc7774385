using System.Text;
using Microsoft.ML.Tokenizers;
using TransformerForge.Data;

namespace TransformerForge.Tests.Data;

/// <summary>Issue 12: the bytes tokenizer is byte-exact on any file; BPE stays linear on pathological text.</summary>
public class TokenizerHardeningTests
{
    /// <summary>1 MB of random bytes (mostly invalid UTF-8) used to become 1.8 M tokens of U+FFFD; now one token per byte, back to the same bytes.</summary>
    [Fact]
    public void BytesCorpusRoundTripsArbitraryBytesExactly()
    {
        using var tmp = new TempDir();
        var bytes = new byte[1 << 20];
        new Random(12).NextBytes(bytes);
        bytes[0] = 0xEF; bytes[1] = 0xBB; bytes[2] = 0xBF;   // a byte-order mark is content too
        var file = Path.Combine(tmp.Path, "random.txt");
        File.WriteAllBytes(file, bytes);

        using var dataset = TextDataset.Open(file, ByteTokenizer.Instance, new TextDatasetOptions(CacheDirectory: Path.Combine(tmp.Path, "cache")));
        Assert.Equal(bytes.Length, dataset.TokenCount);
        var ids = dataset.ReadTokens(0, bytes.Length);
        Assert.Equal(bytes, ByteTokenizer.Instance.DecodeBytes(ids));
        Assert.Equal(CorpusFiles.ContentSha256(file), dataset.ContentSha256);
    }

    [Fact]
    public void BytesTokenizerEncodesAndDecodesRawBytes()
    {
        byte[] raw = [0xFF, 0x00, 0xC3, 0x28, 0xED, 0xA0, 0x80, (byte)'a'];
        var ids = new List<int>();
        ByteTokenizer.Instance.EncodeBytes(raw, ids);
        Assert.Equal(raw.Select(b => (int)b), ids);
        Assert.Equal(raw, ByteTokenizer.Instance.DecodeBytes(ids));
        // As text, invalid bytes show as U+FFFD (the lossy view is only for display).
        Assert.Contains('\uFFFD', ByteTokenizer.Instance.Decode(ids));
    }

    /// <summary>A run longer than <see cref="TiktokenBpeTokenizer.MaxRun"/> is encoded piece by piece: the same as encoding the pieces.</summary>
    [Theory]
    [InlineData("cl100k")]
    [InlineData("o200k")]
    public void LongRunsAreCutIntoPiecesOfMaxRun(string kind)
    {
        var tokenizer = (TiktokenBpeTokenizer)Tokenizers.Create(kind);
        int n = TiktokenBpeTokenizer.MaxRun;
        var random = new Random(3);
        var run = new string(Enumerable.Range(0, 5 * n + 17).Select(_ => (char)('a' + random.Next(26))).ToArray());
        var text = "Hello " + run + " world";
        var pieces = new[] { "Hello " + run[..(n - 0)] }
            .Concat(Enumerable.Range(1, 5).Select(i => run[(i * n)..Math.Min(run.Length, (i + 1) * n)]))
            .ToList();
        pieces[^1] += " world";
        // The run starts after "Hello " (6 chars of other kinds), so cuts fall every MaxRun characters of the run.
        Assert.Equal(pieces.SelectMany(tokenizer.Encode), tokenizer.Encode(text));
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
    }

    /// <summary>Ordinary text has no run that long: the encoding is exactly Microsoft.ML.Tokenizers' (tiktoken's).</summary>
    [Theory]
    [InlineData("cl100k", "cl100k_base")]
    [InlineData("o200k", "o200k_base")]
    public void OrdinaryTextEncodesExactlyAsTiktoken(string kind, string encoding)
    {
        var text = File.ReadAllText(Path.Combine(TestPaths.Fixtures, "..", "data", "tinyshakespeare.txt"))[..20000]
                   + "\n  indented\t\ttabs   and   spaces, 12345678 digits, <|endoftext|>, ünïcödé, 日本語, 🙂🙂🙂";
        var reference = TiktokenTokenizer.CreateForEncoding(encoding);
        Assert.Equal(reference.EncodeToIds(text), Tokenizers.Create(kind).Encode(text));
        // A run just under the limit is not cut.
        var underLimit = new string('=', TiktokenBpeTokenizer.MaxRun);
        Assert.Equal(reference.EncodeToIds(underLimit), Tokenizers.Create(kind).Encode(underLimit));
    }
}
