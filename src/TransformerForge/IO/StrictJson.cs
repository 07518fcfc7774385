using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;

namespace TransformerForge.IO;

/// <summary>
/// A JSON document that <see cref="StrictJson"/> refused: the message names the place (<see cref="Key"/>, a dotted
/// path such as <c>attn_layers.heads</c> or <c>shape[1]</c>) and the problem, without .NET type names.
/// </summary>
public sealed class StrictJsonException(StrictJsonError error, string key, string problem, long? line = null, long? bytePosition = null)
    : JsonException(Compose(key, problem, line, bytePosition), key, line, bytePosition)
{
    /// <summary>What kind of defect it is.</summary>
    public StrictJsonError Error { get; } = error;

    /// <summary>For <see cref="StrictJsonError.DuplicateKey"/>: the key given twice.</summary>
    public string? DuplicateKey { get; init; }

    /// <summary>Where the problem is: a dotted path from the root, empty for the document itself.</summary>
    public string Key { get; } = key;

    /// <summary>The problem alone, without the place.</summary>
    public string Problem { get; } = problem;

    static string Compose(string key, string problem, long? line, long? position) =>
        (key.Length > 0 ? $"at '{key}': " : "") + problem + (line is { } l ? $" (line {l + 1}, byte {position + 1})" : "");
}

/// <summary>The defects <see cref="StrictJson"/> reports.</summary>
public enum StrictJsonError
{
    /// <summary>Not JSON at all, or not one complete value.</summary>
    Syntax,
    /// <summary>The bytes are not UTF-8 (or a string holds a lone surrogate).</summary>
    Encoding,
    /// <summary>A string or key whose escapes are not valid UTF-16.</summary>
    InvalidEscape,
    /// <summary>One object names the same key twice.</summary>
    DuplicateKey,
    /// <summary>A number outside the range of a double.</summary>
    NumberOutOfRange,
    /// <summary>A document that is valid JSON but null where a value was required.</summary>
    Null,
}

/// <summary>
/// The one JSON reader of the library: configurations, safetensors headers, tokenizer files, trainer_state.json,
/// data.json, metrics and fixtures all go through it. Beyond the JSON grammar it refuses, with a
/// <see cref="StrictJsonException"/> naming the place: bytes that are not UTF-8; strings or keys whose escapes are not
/// valid UTF-16 (a lone surrogate such as <c>"\ud800"</c> would otherwise throw from deep inside whatever reads the
/// string later); a key given twice in one object (the last would silently win); and numbers that do not fit a
/// double (<c>1e400</c> would read as infinity).
/// </summary>
public static class StrictJson
{
    /// <summary>Nesting deeper than this is refused (no file of ours goes past 6).</summary>
    public const int MaxDepth = 64;

    /// <summary>Parses UTF-8 JSON. <paramref name="lenient"/> allows comments and trailing commas (hand-written configurations).</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> utf8, bool lenient = false)
    {
        utf8 = SkipBom(utf8);
        Validate(utf8.Span, lenient);
        return JsonDocument.Parse(utf8, Options(lenient));
    }

    /// <summary>Parses JSON text held in a string.</summary>
    public static JsonDocument Parse(string json, bool lenient = false) => Parse(ToUtf8(json), lenient);

    /// <summary>Reads and parses a file's bytes (not its text, so invalid UTF-8 is reported instead of replaced).</summary>
    public static JsonDocument ParseFile(string path, bool lenient = false) => Parse(File.ReadAllBytes(path), lenient);

    /// <summary>Parses into a mutable <see cref="JsonNode"/> tree.</summary>
    public static JsonNode? ParseNode(ReadOnlyMemory<byte> utf8, bool lenient = false)
    {
        utf8 = SkipBom(utf8);
        Validate(utf8.Span, lenient);
        return JsonNode.Parse(utf8.Span, documentOptions: Options(lenient));
    }

    /// <summary>Parses JSON text held in a string into a mutable <see cref="JsonNode"/> tree.</summary>
    public static JsonNode? ParseNode(string json, bool lenient = false) => ParseNode(ToUtf8(json), lenient);

    /// <summary>Deserializes JSON text held in a string (see <see cref="Deserialize{T}(ReadOnlyMemory{byte}, JsonSerializerOptions)"/>).</summary>
    public static T Deserialize<T>(string json, JsonSerializerOptions options) where T : class => Deserialize<T>(ToUtf8(json), options);

    /// <summary>Deserializes a validated document with <paramref name="options"/>; a null document becomes an error.</summary>
    public static T Deserialize<T>(ReadOnlyMemory<byte> utf8, JsonSerializerOptions options) where T : class
    {
        using var doc = Parse(utf8);
        return doc.Deserialize<T>(options) ?? throw new StrictJsonException(StrictJsonError.Null, "", "the document is null");
    }

    /// <summary>A string as it can be shown in a message: control characters and lone surrogates as \u escapes.</summary>
    public static string Printable(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            bool pair = char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]);
            if (pair) { sb.Append(c).Append(s[++i]); continue; }
            if (char.IsSurrogate(c) || char.IsControl(c)) sb.Append($"\\u{(int)c:x4}");
            else sb.Append(c);
        }
        return sb.ToString();
    }

    static JsonDocumentOptions Options(bool lenient) => new()
    {
        MaxDepth = MaxDepth,
        CommentHandling = lenient ? JsonCommentHandling.Skip : JsonCommentHandling.Disallow,
        AllowTrailingCommas = lenient,
    };

    static ReadOnlyMemory<byte> SkipBom(ReadOnlyMemory<byte> utf8) =>
        utf8.Span.StartsWith("\uFEFF"u8) ? utf8[3..] : utf8;

    static byte[] ToUtf8(string json)
    {
        // Encoding.UTF8 would turn a lone surrogate of the string itself into U+FFFD; refuse it instead.
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetBytes(json); }
        catch (EncoderFallbackException e) { throw new StrictJsonException(StrictJsonError.Encoding, "", $"the text holds a lone UTF-16 surrogate at character {e.Index}"); }
    }

    /// <summary>One pass over the tokens, keeping the path for messages and a key set per open object.</summary>
    static void Validate(ReadOnlySpan<byte> utf8, bool lenient)
    {
        if (!Utf8.IsValid(utf8))
        {
            int at = FirstInvalidUtf8(utf8);
            throw new StrictJsonException(StrictJsonError.Encoding, "", $"the bytes are not valid UTF-8 (first invalid byte at offset {at})");
        }
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions
        {
            MaxDepth = MaxDepth,
            CommentHandling = lenient ? JsonCommentHandling.Skip : JsonCommentHandling.Disallow,
            AllowTrailingCommas = lenient,
        });
        var frames = new Stack<Frame>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        Advance(frames);
                        frames.Push(new Frame(reader.TokenType == JsonTokenType.StartObject, Path(frames)));
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        frames.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                    {
                        var frame = frames.Peek();
                        frame.Property = null; // a bad key is reported at its object
                        var name = ReadString(ref reader, frames, "key");
                        if (!frame.Keys!.Add(name))
                            throw new StrictJsonException(StrictJsonError.DuplicateKey, Path(frames), $"key '{Printable(name)}' appears twice in the same object",
                                null, reader.TokenStartIndex) { DuplicateKey = name };
                        frame.Property = name;
                        break;
                    }
                    case JsonTokenType.String:
                        Advance(frames);
                        ReadString(ref reader, frames, "string");
                        break;
                    case JsonTokenType.Number:
                        Advance(frames);
                        if (!reader.TryGetDouble(out var d) || !double.IsFinite(d))
                            throw Fail(StrictJsonError.NumberOutOfRange, ref reader, frames, $"the number {Encoding.UTF8.GetString(reader.ValueSpan)} is out of range");
                        break;
                    default:
                        Advance(frames);
                        break;
                }
            }
        }
        catch (JsonException e) when (e is not StrictJsonException)
        {
            // The reader's own grammar errors; its message carries line and position, but in .NET's words.
            throw new StrictJsonException(StrictJsonError.Syntax, Path(frames), "not valid JSON: " + GrammarProblem(e), e.LineNumber, e.BytePositionInLine);
        }
    }

    static string ReadString(ref Utf8JsonReader reader, Stack<Frame> frames, string what)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            var raw = Encoding.UTF8.GetString(reader.ValueSpan);
            throw Fail(StrictJsonError.InvalidEscape, ref reader, frames, $"the {what} \"{Printable(raw)}\" holds an escape that is not valid UTF-16 (a lone surrogate)");
        }
    }

    static StrictJsonException Fail(StrictJsonError error, ref Utf8JsonReader reader, Stack<Frame> frames, string problem) =>
        new(error, Path(frames), problem, null, reader.TokenStartIndex);

    /// <summary>Moves an array frame to its next index (values in objects are named by their key).</summary>
    static void Advance(Stack<Frame> frames)
    {
        if (frames.TryPeek(out var f) && !f.IsObject) f.Index++;
    }

    static string Path(Stack<Frame> frames)
    {
        if (frames.Count == 0) return "";
        var f = frames.Peek();
        if (f.IsObject) return f.Property is null ? f.Prefix : Join(f.Prefix, Printable(f.Property));
        return f.Index < 0 ? f.Prefix : $"{f.Prefix}[{f.Index}]";
    }

    static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    static string GrammarProblem(JsonException e)
    {
        // "'x' is an invalid start of a value. Path: $ | LineNumber: 0 | BytePositionInLine: 1." -> the first sentence.
        var m = e.Message;
        int cut = m.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut < 0) cut = m.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (cut > 0 ? m[..cut] : m).TrimEnd('.', ' ');
    }

    static int FirstInvalidUtf8(ReadOnlySpan<byte> utf8)
    {
        int offset = 0;
        while (offset < utf8.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(utf8[offset..], out _, out int consumed) != System.Buffers.OperationStatus.Done) return offset;
            offset += consumed;
        }
        return offset;
    }

    sealed class Frame(bool isObject, string prefix)
    {
        public bool IsObject { get; } = isObject;
        public string Prefix { get; } = prefix;
        public HashSet<string>? Keys { get; } = isObject ? new HashSet<string>(StringComparer.Ordinal) : null;
        public string? Property { get; set; }
        public int Index { get; set; } = -1;
    }
}
