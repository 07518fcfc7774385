using System.Text;
using TorchSharp;
using TransformerForge.Data;
using TransformerForge.Runtime;

namespace TransformerForge.Tests.Data;

public class TextDatasetTests
{
    static string Corpus(int lines, int seed = 1)
    {
        var random = new Random(seed);
        var sb = new StringBuilder();
        for (var i = 0; i < lines; i++) sb.Append("line ").Append(i).Append(": ").Append(random.Next()).Append(" lorem ipsum\n");
        return sb.ToString();
    }

    static TextDatasetOptions Options(TempDir dir) => new(CacheDirectory: Path.Combine(dir.Path, "cache"));

    [Fact]
    public void TokenizesOneFileIntoAMappedTokenFileSplitNinetyTen()
    {
        using var dir = new TempDir();
        var text = Corpus(200);
        var file = dir.File("corpus.txt", text);
        var bytes = Tokenizers.Create("bytes");
        using var data = TextDataset.Open(file, bytes, Options(dir));

        var expected = bytes.Encode(text);
        Assert.Equal(expected.Length, data.TokenCount);
        Assert.Equal((long)Math.Floor(expected.Length * 0.9), data.TrainTokens);
        Assert.Equal(data.TokenCount - data.TrainTokens, data.ValidationTokens);
        Assert.Equal((0L, data.TrainTokens), data.Range(DataSplit.Train));
        Assert.Equal((data.TrainTokens, data.ValidationTokens), data.Range(DataSplit.Validation));
        Assert.Equal(expected, data.ReadTokens(0, expected.Length));

        Assert.Equal(2, data.BytesPerToken);
        Assert.Equal(TokenFile.HeaderBytes + 2L * expected.Length, new FileInfo(data.TokenFilePath).Length);
        Assert.StartsWith(Path.Combine(dir.Path, "cache"), data.TokenFilePath);
    }

    [Fact]
    public void LargeVocabulariesAreStoredAsInt32()
    {
        using var dir = new TempDir();
        var text = Corpus(50);
        var file = dir.File("corpus.txt", text);
        var cl100k = Tokenizers.Create("cl100k");
        using var data = TextDataset.Open(file, cl100k, Options(dir));
        Assert.Equal(4, data.BytesPerToken);
        var expected = cl100k.Encode(text);
        Assert.Equal(expected, data.ReadTokens(0, (int)data.TokenCount));
        Assert.Equal(TokenFile.HeaderBytes + 4L * expected.Length, new FileInfo(data.TokenFilePath).Length);
    }

    [Fact]
    public void FolderConcatenatesTxtFilesInNameOrder()
    {
        using var dir = new TempDir();
        var folder = Path.Combine(dir.Path, "books");
        dir.File("books/b.txt", "second ");
        dir.File("books/C.txt", "first ");   // ordinal order: uppercase before lowercase
        dir.File("books/c.txt", "third");
        dir.File("books/notes.md", "ignored");
        var chars = Tokenizers.CreateFromCorpus("chars", folder);
        using var data = TextDataset.Open(folder, chars, Options(dir));
        Assert.Equal("first second third", chars.Decode(data.ReadTokens(0, (int)data.TokenCount)));
        Assert.Equal(["C.txt", "b.txt", "c.txt"], data.Files.Select(Path.GetFileName));
    }

    [Fact]
    public void SplitIsDeterministicAndTheTokenFileIsReused()
    {
        using var dir = new TempDir();
        var file = dir.File("corpus.txt", Corpus(100));
        var bytes = Tokenizers.Create("bytes");
        long train, count;
        string path;
        using (var first = TextDataset.Open(file, bytes, Options(dir)))
        {
            Assert.True(first.Built);
            (train, count, path) = (first.TrainTokens, first.TokenCount, first.TokenFilePath);
        }
        using (var second = TextDataset.Open(file, bytes, Options(dir)))
        {
            Assert.False(second.Built);
            Assert.Equal((train, count, path), (second.TrainTokens, second.TokenCount, second.TokenFilePath));
        }
        using (var rebuilt = TextDataset.Open(file, bytes, Options(dir) with { Rebuild = true }))
            Assert.True(rebuilt.Built);

        // A changed corpus gets a new token file.
        File.AppendAllText(file, "more text\n");
        using var changed = TextDataset.Open(file, bytes, Options(dir));
        Assert.True(changed.Built);
        Assert.Equal(count + 10, changed.TokenCount);
    }

    [Fact]
    public void BatchesAreDeterministicWindowsOfTheirSplit()
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDir();
        var file = dir.File("corpus.txt", Corpus(60));
        using var data = TextDataset.Open(file, Tokenizers.Create("bytes"), Options(dir));
        const int batch = 8, seqLen = 16;

        using var a = data.SampleBatch(DataSplit.Train, batch, seqLen, new Random(123));
        using var b = data.SampleBatch(DataSplit.Train, batch, seqLen, new Random(123));
        using var c = data.SampleBatch(DataSplit.Train, batch, seqLen, new Random(124));
        Assert.Equal([batch, seqLen + 1], a.shape);
        Assert.Equal(torch.ScalarType.Int64, a.dtype);
        Assert.True(Same(a, b));
        Assert.False(Same(a, c));

        using var g1 = data.SampleBatch(DataSplit.Validation, batch, seqLen, new torch.Generator(5));
        using var g2 = data.SampleBatch(DataSplit.Validation, batch, seqLen, new torch.Generator(5));
        Assert.True(Same(g1, g2));

        AssertWindowsOf(data, DataSplit.Train, a);
        AssertWindowsOf(data, DataSplit.Validation, g1);
    }

    static bool Same(torch.Tensor x, torch.Tensor y)
    {
        return x.shape.SequenceEqual(y.shape) && x.data<long>().SequenceEqual(y.data<long>());
    }

    static void AssertWindowsOf(TextDataset data, DataSplit split, torch.Tensor batch)
    {
        var (start, length) = data.Range(split);
        var tokens = data.ReadTokens(start, (int)length).Select(t => (long)t).ToArray();
        var window = (int)batch.shape[1];
        for (var row = 0; row < batch.shape[0]; row++)
        {
            using var r = batch[row];
            var values = r.data<long>().ToArray();
            var found = Enumerable.Range(0, tokens.Length - window + 1).Any(o => tokens.AsSpan(o, window).SequenceEqual(values));
            Assert.True(found, $"row {row} is not a window of the {split} split");
        }
    }

    [Fact]
    public void WindowCanSpanTheWholeSplitButNoMore()
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDir();
        var file = dir.File("corpus.txt", new string('a', 100));
        using var data = TextDataset.Open(file, Tokenizers.Create("bytes"), Options(dir));
        Assert.Equal((90L, 10L), (data.TrainTokens, data.ValidationTokens));
        using var whole = data.SampleBatch(DataSplit.Validation, 2, 9, new Random(1));
        Assert.Equal([2, 10], whole.shape);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => data.SampleBatch(DataSplit.Validation, 2, 10, new Random(1)));
        Assert.Contains("validation split", e.Message);
        Assert.Contains("11", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => data.SampleBatch(DataSplit.Train, 0, 4, new Random(1)));
    }

    [Fact]
    public void ReportsBadCorpora()
    {
        using var dir = new TempDir();
        var bytes = Tokenizers.Create("bytes");
        var missing = Path.Combine(dir.Path, "missing.txt");
        Assert.Contains("missing.txt", Assert.Throws<FileNotFoundException>(() => TextDataset.Open(missing, bytes, Options(dir))).Message);

        var empty = dir.File("empty.txt", "");
        Assert.Contains("is empty", Assert.Throws<InvalidDataException>(() => TextDataset.Open(empty, bytes, Options(dir))).Message);
        var bomOnly = dir.File("bom.txt");
        File.WriteAllBytes(bomOnly, [0xEF, 0xBB, 0xBF]);
        // For a text tokenizer a byte-order mark is encoding, not text; the bytes tokenizer keeps every byte (see TokenizerHardeningTests).
        Assert.Contains("is empty", Assert.Throws<InvalidDataException>(() => TextDataset.Open(bomOnly, Tokenizers.Create("cl100k"), Options(dir))).Message);

        var noTxt = Path.Combine(dir.Path, "folder");
        dir.File("folder/readme.md", "not a corpus");
        Assert.Contains("no .txt files", Assert.Throws<FileNotFoundException>(() => TextDataset.Open(noTxt, bytes, Options(dir))).Message);

        var file = dir.File("text.txt", "abc\nabd\nxyz");
        var chars = Tokenizers.Create("chars", "abcd\n");
        var e = Assert.Throws<InvalidDataException>(() => TextDataset.Open(file, chars, Options(dir)));
        Assert.Contains("text.txt", e.Message);
        Assert.Contains("'x'", e.Message);
        Assert.Contains("offset 8", e.Message);
        Assert.IsType<UnknownCharacterException>(e.InnerException);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(dir.Path, "cache"), "*.tmp"));

        Assert.Throws<ArgumentOutOfRangeException>(() => TextDataset.Open(file, bytes, Options(dir) with { TrainFraction = 1 }));
    }

    [Fact]
    public void CorruptTokenFileIsRebuilt()
    {
        using var dir = new TempDir();
        var file = dir.File("corpus.txt", Corpus(20));
        var bytes = Tokenizers.Create("bytes");
        string path;
        using (var data = TextDataset.Open(file, bytes, Options(dir))) path = data.TokenFilePath;
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Null(TokenFile.ReadHeader(path));
        using var again = TextDataset.Open(file, bytes, Options(dir));
        Assert.True(again.Built);
        Assert.Equal(bytes.Encode(File.ReadAllText(file)), again.ReadTokens(0, (int)again.TokenCount));
        Assert.Throws<InvalidDataException>(() => TokenFile.Open(file));
    }
}
