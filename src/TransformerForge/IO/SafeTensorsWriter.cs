using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace TransformerForge.IO;

/// <summary>
/// Writes safetensors files the way the reference implementation lays them out: "__metadata__" first, then the
/// tensors in data order (by dtype width, then name) with contiguous data, header padded with spaces to a multiple of 8 bytes.
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>
    /// Writes atomically: the bytes go to a temporary file in the same directory, which then replaces
    /// <paramref name="path"/>, so readers never see a half-written file.
    /// </summary>
    public static void Write(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        // Validate and lay out before touching the disk, so bad input leaves no temporary file behind.
        var (header, sorted) = BuildHeader(tensors, metadata);

        var fullPath = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(fullPath)!;
        var temp = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                WriteBody(stream, header, sorted);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Tuple form of <see cref="Write(string, IEnumerable{SafeTensor}, IReadOnlyDictionary{string, string}?)"/>.</summary>
    public static void Write(string path,
        IEnumerable<(string Name, SafeTensorDType DType, long[] Shape, ReadOnlyMemory<byte> Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
        => Write(path, tensors.Select(t => new SafeTensor(t.Name, t.DType, t.Shape, t.Data)), metadata);

    /// <summary>Writes the file's bytes to <paramref name="stream"/> at its current position.</summary>
    public static void Write(Stream stream, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (header, sorted) = BuildHeader(tensors, metadata);
        WriteBody(stream, header, sorted);
    }

    /// <summary>The file's bytes in memory.</summary>
    public static byte[] ToBytes(IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var stream = new MemoryStream();
        Write(stream, tensors, metadata);
        return stream.ToArray();
    }

    static void WriteBody(Stream stream, byte[] header, List<SafeTensor> sorted)
    {
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var t in sorted) stream.Write(t.Data.Span);
    }

    /// <summary>Validates the tensors and returns the padded header plus the tensors in data order.</summary>
    static (byte[] Header, List<SafeTensor> Sorted) BuildHeader(IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var sorted = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in sorted)
        {
            ArgumentNullException.ThrowIfNull(t, nameof(tensors));
            Validate(t);
            if (!names.Add(t.Name)) throw new ArgumentException($"Duplicate tensor name '{t.Name}'.", nameof(tensors));
        }
        // The reference writer's order: wider dtypes first (keeps each tensor aligned to its element size, since the
        // data buffer starts 8-aligned), then by name. Same tensors, same bytes; single-dtype files are in name order.
        sorted.Sort((a, b) => a.DType != b.DType ? a.DType.WriteRank().CompareTo(b.DType.WriteRank()) : CompareCodePoints(a.Name, b.Name));

        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(SafeTensorsHeader.MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    if (value is null) throw new ArgumentException($"Metadata value for key '{key}' is null.", nameof(metadata));
                    w.WriteString(key, value);
                }
                w.WriteEndObject();
            }

            long offset = 0;
            foreach (var t in sorted)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.ToHeaderName());
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += t.Data.Length;
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }

        // Pad with spaces to a multiple of 8 so the data buffer starts aligned, as the reference writer does.
        int length = (int)json.Length;
        int padded = (length + 7) / 8 * 8;
        var header = new byte[padded];
        json.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return (header, sorted);
    }

    /// <summary>Code-point order, which equals the byte order of UTF-8 that the reference sorts by (UTF-16 ordinal differs above U+FFFF).</summary>
    static int CompareCodePoints(string a, string b)
    {
        var x = a.EnumerateRunes();
        var y = b.EnumerateRunes();
        while (true)
        {
            bool hasX = x.MoveNext(), hasY = y.MoveNext();
            if (!hasX || !hasY) return hasX.CompareTo(hasY);
            int c = x.Current.Value.CompareTo(y.Current.Value);
            if (c != 0) return c;
        }
    }

    static void Validate(SafeTensor t)
    {
        if (t.Name is null) throw new ArgumentException("Tensor name is null.", "tensors");
        if (t.Name == SafeTensorsHeader.MetadataKey)
            throw new ArgumentException($"'{SafeTensorsHeader.MetadataKey}' is reserved and cannot name a tensor.", "tensors");
        if (t.Shape is null) throw new ArgumentException($"Tensor '{t.Name}' has a null shape.", "tensors");
        _ = t.DType.ElementSize(); // rejects values outside the enum
        long count = 1;
        foreach (var d in t.Shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor '{t.Name}' has negative dimension {d} in shape {t.ShapeText}.", "tensors");
            count = checked(count * d);
        }
        long bytes = checked(count * t.DType.ElementSize());
        if (bytes != t.Data.Length)
            throw new ArgumentException(
                $"Tensor '{t.Name}': shape {t.ShapeText} of {t.DType.ToHeaderName()} needs {bytes} bytes, but {t.Data.Length} were given.", "tensors");
    }
}
