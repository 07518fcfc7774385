using System.Text;
using TransformerForge.Data;

namespace TransformerForge.Tests.Data;

public class TokenizerTests
{
    const string Sample = "Hello, world!\nThe quick brown fox — jumps over 13 lazy dogs.\n\tÜnïcödé: 日本語 and 🙂 emoji.\r\n  end  ";

    static ITokenizer Make(string kind) => Tokenizers.Create(kind, kind == "chars" ? Sample : null);

    [Theory]
    [InlineData("bytes")]
    [InlineData("chars")]
    [InlineData("cl100k")]
    [InlineData("o200k")]
    public void RoundTrips(string kind)
    {
        var tokenizer = Make(kind);
        Assert.Equal(kind, tokenizer.Kind);
        var ids = tokenizer.Encode(Sample);
        Assert.NotEmpty(ids);
        Assert.All(ids, id => Assert.InRange(id, 0, tokenizer.VocabSize - 1));
        Assert.Equal(Sample, tokenizer.Decode(ids));
        Assert.Empty(tokenizer.Encode(""));
        Assert.Equal("", tokenizer.Decode([]));
    }

    [Theory]
    [InlineData("bytes")]
    [InlineData("chars")]
    [InlineData("cl100k")]
    [InlineData("o200k")]
    public void SavesAndLoads(string kind)
    {
        using var dir = new TempDir();
        var tokenizer = Make(kind);
        var target = Path.Combine(dir.Path, "tok");
        tokenizer.Save(target);
        Assert.True(File.Exists(Path.Combine(target, TokenizerFile.FileName)));

        var loaded = Tokenizers.Load(target);
        Assert.Equal(tokenizer.Kind, loaded.Kind);
        Assert.Equal(tokenizer.VocabSize, loaded.VocabSize);
        Assert.Equal(tokenizer.Encode(Sample), loaded.Encode(Sample));
        Assert.Equal(tokenizer.ToJson(), loaded.ToJson());
        // The file itself is accepted too.
        Assert.Equal(kind, Tokenizers.Load(Path.Combine(target, TokenizerFile.FileName)).Kind);
    }

    [Fact]
    public void VocabularySizes()
    {
        Assert.Equal(256, Tokenizers.Create("bytes").VocabSize);
        Assert.Equal(100277, Tokenizers.Create("cl100k").VocabSize);
        Assert.Equal(200019, Tokenizers.Create("o200k").VocabSize);
        Assert.Equal(4, Tokenizers.Create("chars", "abcabcd").VocabSize);
    }

    [Fact]
    public void BpeEncodesSpecialTokensAndCompressesText()
    {
        var cl100k = Tokenizers.Create("cl100k");
        Assert.Equal([100257], cl100k.Encode("<|endoftext|>"));
        Assert.True(cl100k.Encode(Sample).Length < Encoding.UTF8.GetByteCount(Sample) / 2);
        Assert.Same(cl100k, Tokenizers.Create("cl100k_base"));
    }

    [Fact]
    public void CharVocabularyIsSortedDistinctCharactersAndEmojiAreOneToken()
    {
        var chars = (CharTokenizer)Tokenizers.Create("chars", "cab🙂ba");
        Assert.Equal("abc🙂", chars.Vocabulary);
        Assert.Equal([2, 0, 1, 3], chars.Encode("cab🙂"));
        Assert.Contains("\"vocab\"", chars.ToJson());
    }

    [Fact]
    public void CharTokenizerNamesAnUnknownCharacterAndItsPosition()
    {
        var chars = Tokenizers.Create("chars", "abc ");
        var e = Assert.Throws<UnknownCharacterException>(() => chars.Encode("ab cZa"));
        Assert.Equal("Z", e.Character.ToString());
        Assert.Equal(4, e.Position);
        Assert.Contains("'Z'", e.Message);
        Assert.Contains("position 4", e.Message);
        // Invisible characters are named by code point.
        var tab = Assert.Throws<UnknownCharacterException>(() => chars.Encode("a\tb"));
        Assert.Contains("U+0009", tab.Message);
    }

    [Fact]
    public void DecodeRejectsIdsOutsideTheVocabulary()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizers.Create("bytes").Decode([65, 256]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizers.Create("chars", "ab").Decode([2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizers.Create("o200k").Decode([-1]));
    }

    [Fact]
    public void CreateRejectsUnknownKindAndCharsWithoutCorpus()
    {
        var e = Assert.Throws<ArgumentException>(() => Tokenizers.Create("wordpiece"));
        Assert.Contains("wordpiece", e.Message);
        Assert.Contains("bytes, chars, cl100k, o200k", e.Message);
        Assert.Contains("corpus", Assert.Throws<ArgumentException>(() => Tokenizers.Create("chars")).Message);
        Assert.Throws<ArgumentException>(() => Tokenizers.Create("chars", ""));
    }

    [Fact]
    public void LoadReportsMissingAndCorruptFiles()
    {
        using var dir = new TempDir();
        var missing = Path.Combine(dir.Path, "nope");
        Assert.Contains("nope", Assert.Throws<DirectoryNotFoundException>(() => Tokenizers.Load(missing)).Message);
        Assert.Contains(TokenizerFile.FileName, Assert.Throws<FileNotFoundException>(() => Tokenizers.Load(dir.Path)).Message);

        void Write(string json) => File.WriteAllText(Path.Combine(dir.Path, TokenizerFile.FileName), json);
        Write("{\"kind\": \"bytes\"");
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() => Tokenizers.Load(dir.Path)).Message);
        Write("[1, 2]");
        Assert.Contains("JSON object", Assert.Throws<InvalidDataException>(() => Tokenizers.Load(dir.Path)).Message);
        Write("{\"vocab\": \"ab\"}");
        Assert.Contains("\"kind\"", Assert.Throws<InvalidDataException>(() => Tokenizers.Load(dir.Path)).Message);
        Write("{\"kind\": \"sentencepiece\"}");
        var unknown = Assert.Throws<InvalidDataException>(() => Tokenizers.Load(dir.Path));
        Assert.Contains("sentencepiece", unknown.Message);
        Assert.Contains("known kinds", unknown.Message);
        Write("{\"kind\": \"chars\"}");
        Assert.Contains("\"vocab\"", Assert.Throws<InvalidDataException>(() => Tokenizers.Load(dir.Path)).Message);
        Write("{\"kind\": \"chars\", \"vocab\": \"ba\"}");
        Assert.Contains("sorted", Assert.Throws<InvalidDataException>(() => Tokenizers.Load(dir.Path)).Message);
    }

    [Theory]
    [InlineData("cl100k")]
    [InlineData("o200k")]
    [InlineData("bytes")]
    public void ChunkedEncodingEqualsWholeEncoding(string kind)
    {
        // Many short lines, blank lines, indentation and one line longer than a chunk.
        var sb = new StringBuilder();
        var random = new Random(7);
        string[] words = ["alpha", "beta", "Gamma", "δέλτα", "42", "1234567", "don't", "  ", "!?", "🙂", "x"];
        for (var line = 0; line < 400; line++)
        {
            if (line % 37 == 0) sb.Append("\n\n   ");
            for (var w = 0; w < random.Next(1, 15); w++) sb.Append(words[random.Next(words.Length)]).Append(random.Next(4) == 0 ? "  " : " ");
            sb.Append(line % 11 == 0 ? "\r\n" : "\n");
        }
        sb.Append(string.Concat(Enumerable.Repeat("longlineword ", 400)));
        var text = sb.ToString();

        using var dir = new TempDir();
        var file = dir.File("t.txt", text);
        var tokenizer = Tokenizers.Create(kind);
        var chunks = TextChunker.Read(file, 1024).Select(c => new string(c.Text.Span)).ToList();
        Assert.True(chunks.Count > 10);
        Assert.Equal(text, string.Concat(chunks));
        Assert.Equal(tokenizer.Encode(text), chunks.SelectMany(tokenizer.Encode).ToArray());
    }

    [Fact]
    public void CharsVocabularyCanBeCollectedFromCorpusFiles()
    {
        using var dir = new TempDir();
        dir.File("b.txt", "zzz");
        dir.File("a.txt", "hello");
        var chars = (CharTokenizer)Tokenizers.CreateFromCorpus("chars", dir.Path);
        Assert.Equal("ehloz", chars.Vocabulary);
        Assert.Equal("bytes", Tokenizers.CreateFromCorpus("bytes", dir.Path).Kind);
    }
}
