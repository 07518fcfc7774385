using System.Text;
using TransformerForge.Config;
using TransformerForge.Data;
using TransformerForge.IO;
using TransformerForge.Tests.Data;
using TransformerForge.Training;

namespace TransformerForge.Tests.IO;

/// <summary>
/// Every JSON file the library reads goes through <see cref="StrictJson"/>: a lone surrogate escape, a duplicated
/// key, an out-of-range number or bytes that are not UTF-8 become a specific error naming the place, never an
/// InvalidOperationException from deep inside a reader, a silently kept last value or an infinity.
/// </summary>
public class StrictJsonTests
{
    static StrictJsonException Refuse(string json, StrictJsonError error)
    {
        var e = Assert.Throws<StrictJsonException>(() => StrictJson.Parse(json).Dispose());
        Assert.Equal(error, e.Error);
        return e;
    }

    [Fact]
    public void LoneSurrogateInAValueIsRefusedWithItsPath()
    {
        var e = Refuse("""{"a": {"b": ["x", "\ud800"]}}""", StrictJsonError.InvalidEscape);
        Assert.Equal("a.b[1]", e.Key);
        Assert.Contains("\\ud800", e.Message);
    }

    [Fact]
    public void LoneSurrogateInAKeyIsRefusedAtItsObject()
    {
        var e = Refuse("""{"a": {"\udc00x": 1}}""", StrictJsonError.InvalidEscape);
        Assert.Equal("a", e.Key);
        Assert.Contains("key", e.Message);
    }

    [Fact]
    public void ValidSurrogatePairsAreKept()
    {
        using var doc = StrictJson.Parse("""{"e": "\ud83d\ude42"}""");
        Assert.Equal("🙂", doc.RootElement.GetProperty("e").GetString());
    }

    [Fact]
    public void DuplicateKeysAreRefused()
    {
        var e = Refuse("""{"a": 1, "b": {"c": 1, "c": 2}}""", StrictJsonError.DuplicateKey);
        Assert.Equal("b", e.Key);
        Assert.Equal("c", e.DuplicateKey);
        // The same key in different objects is fine.
        StrictJson.Parse("""{"a": {"c": 1}, "b": {"c": 2}}""").Dispose();
    }

    [Theory]
    [InlineData("1e400")]
    [InlineData("-1e309")]
    public void NumbersBeyondADoubleAreRefused(string number)
    {
        var e = Refuse($$"""{"ff_mult": {{number}}}""", StrictJsonError.NumberOutOfRange);
        Assert.Equal("ff_mult", e.Key);
        Assert.Contains(number, e.Message);
    }

    [Fact]
    public void InvalidUtf8IsRefusedWithItsOffset()
    {
        var e = Assert.Throws<StrictJsonException>(() => StrictJson.Parse(new byte[] { (byte)'{', (byte)'"', 0xC3, (byte)'"', (byte)':', (byte)'1', (byte)'}' }).Dispose());
        Assert.Equal(StrictJsonError.Encoding, e.Error);
        Assert.Contains("offset 2", e.Message);
    }

    [Fact]
    public void LoneSurrogateInACSharpStringIsRefusedNotReplaced()
    {
        var e = Assert.Throws<StrictJsonException>(() => StrictJson.Parse("{\"a\": \"\ud800\"}").Dispose());
        Assert.Equal(StrictJsonError.Encoding, e.Error);
    }

    [Fact]
    public void GrammarErrorsNameTheLineWithoutDotNetDecorations()
    {
        var e = Refuse("{\n\"a\": tru }", StrictJsonError.Syntax);
        Assert.Contains("line 2", e.Message);
        Assert.DoesNotContain("LineNumber", e.Message);
        Assert.DoesNotContain("BytePositionInLine", e.Message);
    }

    [Fact]
    public void ByteOrderMarkAndLenientCommentsAreAccepted()
    {
        StrictJson.Parse(Encoding.UTF8.GetPreamble().Concat("{}"u8.ToArray()).ToArray()).Dispose();
        StrictJson.Parse("{ // note\n \"a\": 1, }", lenient: true).Dispose();
        Refuse("{ // note\n \"a\": 1 }", StrictJsonError.Syntax);
    }

    // ---- every reader of the library goes through it ------------------------------------------------------------------

    [Fact]
    public void ConfigurationWithALoneSurrogateIsAConfigException()
    {
        var key = Assert.Throws<ConfigException>(() => ModelConfig.Parse("""{"type": "TransformerWrapper", "num_tokens": 8, "max_seq_len": 8, "attn_layers": {"type": "Decoder", "dim": 8, "depth": 1, "\ud800": 1}}"""));
        Assert.Equal("attn_layers", key.Key);
        var value = Assert.Throws<ConfigException>(() => ModelConfig.Parse("""{"type": "\udfff"}"""));
        Assert.Equal("type", value.Key);
    }

    [Fact]
    public void ConfigurationKeyIsNamedOnceWithItsFile()
    {
        using var tmp = new TempDir();
        var file = tmp.File("m.json", """{"type": "TransformerWrapper", "num_tokens": 8, "max_seq_len": 8, "attn_layers": {"type": "Decoder", "dim": 8, "depth": 1, "heads": -1}}""");
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Load(file));
        Assert.Equal(1, CountOf(e.Message, "config key"));
        Assert.StartsWith($"{file}: config key 'attn_layers.heads'", e.Message);
    }

    [Fact]
    public void TokenizerFileWithALoneSurrogateIsInvalidData()
    {
        using var tmp = new TempDir();
        tmp.File(TokenizerFile.FileName, """{"kind": "chars", "vocab": "ab\ud800"}""");
        var e = Assert.Throws<InvalidDataException>(() => Tokenizers.Load(tmp.Path));
        Assert.Contains("vocab", e.Message);
    }

    [Fact]
    public void TrainerStateAndDataSpecWithALoneSurrogateAreInvalidData()
    {
        using var tmp = new TempDir();
        tmp.File(TrainerState.FileName, """{"format": 1, "step": 1, "options": {"device": "\ud800"}}""");
        Assert.Contains("options.device", Assert.Throws<InvalidDataException>(() => TrainerState.Load(tmp.Path)).Message);
        tmp.File(TrainingDataSpec.FileName, """{"kind": "task", "task": "\ud800"}""");
        Assert.Contains("task", Assert.Throws<InvalidDataException>(() => TrainingDataSpec.Load(tmp.Path)).Message);
    }

    [Fact]
    public void MetricsLinesWithALoneSurrogateAreSkippedLikeTornLines()
    {
        using var tmp = new TempDir();
        var file = tmp.File("metrics.jsonl", "{\"kind\": \"train\", \"step\": 1}\n{\"kind\": \"\\ud800\", \"step\": 2}\n{\"kind\": \"train\", \"step\": 3}\n");
        Assert.Equal([1, 3], MetricsLog.Read(file).Select(o => o["step"]!.GetValue<int>()));
    }

    static int CountOf(string s, string part)
    {
        int n = 0;
        for (int i = s.IndexOf(part, StringComparison.Ordinal); i >= 0; i = s.IndexOf(part, i + 1, StringComparison.Ordinal)) n++;
        return n;
    }
}
