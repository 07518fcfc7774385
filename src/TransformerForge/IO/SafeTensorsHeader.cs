using System.Text.Json;
using System.Text.Unicode;

namespace TransformerForge.IO;

/// <summary>Where one tensor lives in the data buffer, as the header declares it (already validated).</summary>
internal readonly record struct SafeTensorsHeaderEntry(string Name, SafeTensorDType DType, long[] Shape, long Begin, long End)
{
    public long Length => End - Begin;
}

/// <summary>
/// Parses and validates the JSON header. Every length and offset is checked against the real size of the
/// data buffer before anyone allocates or reads based on it.
/// </summary>
internal sealed class SafeTensorsHeader
{
    /// <summary>Size of the little-endian u64 that precedes the header.</summary>
    public const int PrefixSize = 8;

    /// <summary>Same cap as the reference implementation: a larger header is treated as corrupt, not read.</summary>
    public const long MaxHeaderLength = 100_000_000;

    public const string MetadataKey = "__metadata__";

    SafeTensorsHeader(List<SafeTensorsHeaderEntry> entries, Dictionary<string, string> metadata)
    {
        Entries = entries;
        Metadata = metadata;
    }

    /// <summary>Entries in data-buffer order.</summary>
    public IReadOnlyList<SafeTensorsHeaderEntry> Entries { get; }

    public Dictionary<string, string> Metadata { get; }

    /// <summary>
    /// Checks the declared header length against the total size of the source, so that a corrupt prefix
    /// (e.g. 2^62) is reported instead of becoming an allocation.
    /// </summary>
    public static int CheckHeaderLength(ulong headerLength, long totalLength, string source)
    {
        long available = totalLength - PrefixSize;
        if (headerLength > (ulong)available)
            throw SafeTensorsErrors.Invalid(source,
                $"header length {headerLength} is larger than the {available} bytes that follow the 8-byte length prefix (file size {totalLength} bytes)");
        if (headerLength > MaxHeaderLength)
            throw SafeTensorsErrors.Invalid(source,
                $"header length {headerLength} exceeds the {MaxHeaderLength}-byte limit");
        return (int)headerLength;
    }

    /// <summary>Reports a source too short to hold even the length prefix.</summary>
    public static void CheckMinimumLength(long totalLength, string source)
    {
        if (totalLength < PrefixSize)
            throw SafeTensorsErrors.Invalid(source,
                $"file is {totalLength} bytes, shorter than the 8-byte header length prefix");
    }

    public static SafeTensorsHeader Parse(ReadOnlyMemory<byte> json, long dataLength, string source)
    {
        // JsonDocument checks UTF-8 only when a string is read, which would surface later as a non-format exception.
        if (!Utf8.IsValid(json.Span))
            throw SafeTensorsErrors.Invalid(source, "header is not valid UTF-8");
        // The format: "The header data MUST begin with a { character" (leading spaces are how a polyglot file hides).
        if (json.Length == 0 || json.Span[0] != (byte)'{')
            throw SafeTensorsErrors.Invalid(source, json.Length == 0 ? "header is empty (not valid JSON)"
                : $"header must begin with '{{', but it begins with byte 0x{json.Span[0]:X2}");

        JsonDocument doc;
        try
        {
            // Strict: duplicate keys (top level or inside an entry), lone-surrogate escapes and out-of-range numbers are errors.
            doc = StrictJson.Parse(json);
        }
        catch (StrictJsonException e)
        {
            throw SafeTensorsErrors.Invalid(source, e switch
            {
                { Error: StrictJsonError.DuplicateKey, Key: "" } when e.DuplicateKey == MetadataKey => $"header contains '{MetadataKey}' more than once",
                { Error: StrictJsonError.DuplicateKey, Key: "" } => $"duplicate tensor name '{StrictJson.Printable(e.DuplicateKey!)}' in header",
                { Error: StrictJsonError.DuplicateKey } when e.Key == MetadataKey => $"'{MetadataKey}' contains key '{StrictJson.Printable(e.DuplicateKey!)}' more than once",
                { Error: StrictJsonError.DuplicateKey } => $"tensor '{e.Key}' has the field '{StrictJson.Printable(e.DuplicateKey!)}' more than once",
                { Error: StrictJsonError.Syntax } => $"header is not valid JSON: {e.Message}",
                _ => $"header is not valid: {e.Message}",
            });
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw SafeTensorsErrors.Invalid(source, $"header must be a JSON object, but it is {Describe(root.ValueKind)}");

            var entries = new List<SafeTensorsHeaderEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            // JsonDocument keeps duplicate keys, so they are caught here rather than silently overwritten.
            var seen = new HashSet<string>(StringComparer.Ordinal);

            foreach (var property in root.EnumerateObject())
            {
                var name = property.Name;
                if (!seen.Add(name))
                    throw SafeTensorsErrors.Invalid(source, name == MetadataKey
                        ? $"header contains '{MetadataKey}' more than once"
                        : $"duplicate tensor name '{name}' in header");

                if (name == MetadataKey)
                    ReadMetadata(property.Value, metadata, source);
                else
                    entries.Add(ReadEntry(name, property.Value, dataLength, source));
            }

            CheckLayout(entries, dataLength, source);
            return new SafeTensorsHeader(entries, metadata);
        }
    }

    static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw SafeTensorsErrors.Invalid(source, $"'{MetadataKey}' must be a JSON object, but it is {Describe(value.ValueKind)}");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw SafeTensorsErrors.Invalid(source,
                    $"'{MetadataKey}' value for key '{item.Name}' must be a string, but it is {Describe(item.Value.ValueKind)}");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw SafeTensorsErrors.Invalid(source, $"'{MetadataKey}' contains key '{item.Name}' more than once");
        }
    }

    static SafeTensorsHeaderEntry ReadEntry(string name, JsonElement value, long dataLength, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw SafeTensorsErrors.Invalid(source, $"tensor '{name}': entry must be a JSON object, but it is {Describe(value.ValueKind)}");

        // dtype
        if (!value.TryGetProperty("dtype", out var dtypeElement))
            throw SafeTensorsErrors.Invalid(source, $"tensor '{name}' is missing 'dtype'");
        if (dtypeElement.ValueKind != JsonValueKind.String)
            throw SafeTensorsErrors.Invalid(source, $"tensor '{name}': 'dtype' must be a string, but it is {Describe(dtypeElement.ValueKind)}");
        var dtypeName = dtypeElement.GetString()!;
        if (!SafeTensorDTypeExtensions.TryParseHeaderName(dtypeName, out var dtype))
            throw SafeTensorsErrors.Invalid(source,
                $"tensor '{name}' has unknown or unsupported dtype '{dtypeName}' (supported: {SafeTensorDTypeExtensions.SupportedNames})");

        // shape
        if (!value.TryGetProperty("shape", out var shapeElement))
            throw SafeTensorsErrors.Invalid(source, $"tensor '{name}' is missing 'shape'");
        if (shapeElement.ValueKind != JsonValueKind.Array)
            throw SafeTensorsErrors.Invalid(source, $"tensor '{name}': 'shape' must be an array, but it is {Describe(shapeElement.ValueKind)}");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var d))
                throw SafeTensorsErrors.Invalid(source, $"tensor '{name}': shape element {dim.GetRawText()} is not an integer");
            if (d < 0)
                throw SafeTensorsErrors.Invalid(source, $"tensor '{name}' has negative dimension {d} in shape {shapeElement.GetRawText()}");
            shape[i++] = d;
        }

        // data_offsets
        if (!value.TryGetProperty("data_offsets", out var offsetsElement))
            throw SafeTensorsErrors.Invalid(source, $"tensor '{name}' is missing 'data_offsets'");
        if (offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
            throw SafeTensorsErrors.Invalid(source, $"tensor '{name}': 'data_offsets' must be an array [begin, end], but it is {offsetsElement.GetRawText()}");
        var begin = ReadOffset(offsetsElement[0], name, source);
        var end = ReadOffset(offsetsElement[1], name, source);
        if (begin > end)
            throw SafeTensorsErrors.Invalid(source, $"tensor '{name}': data_offsets begin {begin} is greater than end {end}");
        if (end > dataLength)
            throw SafeTensorsErrors.Invalid(source,
                $"tensor '{name}': data_offsets [{begin}, {end}] are out of range of the data buffer, which holds {dataLength} bytes (file truncated?)");

        // The byte count implied by the shape must match the span exactly; computed with overflow checks
        // because a hostile shape can exceed 2^63.
        long count = 1;
        long bytes;
        try
        {
            foreach (var d in shape) count = checked(count * d);
            bytes = checked(count * dtype.ElementSize());
        }
        catch (OverflowException)
        {
            throw SafeTensorsErrors.Invalid(source,
                $"tensor '{name}': shape {SafeTensor.FormatShape(shape)} of {dtypeName} overflows a 64-bit byte count");
        }
        // An empty tensor has no bytes, but torch still lays out its strides as the product of the other dimensions:
        // [0, 2^62, 2^62] holds nothing yet overflows them. The reference reader accepts it; nothing can use it.
        if (!StridesFit(shape, dtype.ElementSize()))
            throw SafeTensorsErrors.Invalid(source,
                $"tensor '{name}': shape {SafeTensor.FormatShape(shape)} of {dtypeName} overflows 64-bit strides (the product of its non-zero dimensions is too large)");
        if (bytes != end - begin)
            throw SafeTensorsErrors.Invalid(source,
                $"tensor '{name}': shape {SafeTensor.FormatShape(shape)} of {dtypeName} needs {bytes} bytes, but data_offsets [{begin}, {end}] span {end - begin}");

        return new SafeTensorsHeaderEntry(name, dtype, shape, begin, end);
    }

    /// <summary>Whether the strides of a contiguous tensor of this shape, in bytes, fit a signed 64-bit integer.</summary>
    internal static bool StridesFit(IEnumerable<long> shape, int elementSize)
    {
        long span = elementSize;
        foreach (var d in shape)
        {
            if (d < 0) return false;
            try { span = checked(span * Math.Max(d, 1)); }
            catch (OverflowException) { return false; }
        }
        return true;
    }

    static long ReadOffset(JsonElement element, string name, string source)
    {
        // Offsets are u64 in the format; anything past long.MaxValue cannot fit a real file, so it is out of range too.
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var v) || v < 0)
            throw SafeTensorsErrors.Invalid(source,
                $"tensor '{name}': data_offsets element {element.GetRawText()} is not a non-negative integer within range");
        return v;
    }

    /// <summary>
    /// Like the reference implementation, tensors must tile the data buffer exactly: no overlaps, no gaps,
    /// no trailing bytes.
    /// </summary>
    static void CheckLayout(List<SafeTensorsHeaderEntry> entries, long dataLength, string source)
    {
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expected = 0;
        SafeTensorsHeaderEntry? previous = null;
        foreach (var e in entries)
        {
            if (e.Begin < expected)
                throw SafeTensorsErrors.Invalid(source,
                    $"tensors '{previous!.Value.Name}' [{previous.Value.Begin}, {previous.Value.End}] and '{e.Name}' [{e.Begin}, {e.End}] have overlapping data_offsets");
            if (e.Begin > expected)
                throw SafeTensorsErrors.Invalid(source,
                    $"gap in the data buffer: bytes [{expected}, {e.Begin}) before tensor '{e.Name}' belong to no tensor");
            expected = e.End;
            previous = e;
        }
        if (expected < dataLength)
            throw SafeTensorsErrors.Invalid(source,
                $"data buffer has {dataLength - expected} trailing bytes after offset {expected} that belong to no tensor");
    }

    static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };
}
