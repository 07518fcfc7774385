using System.Buffers.Binary;

namespace TransformerForge.IO;

/// <summary>
/// The contents of a safetensors file: its tensors (raw bytes, no libtorch needed) and its string metadata.
/// Reading validates the whole layout first and throws <see cref="InvalidDataException"/> on any defect.
/// </summary>
public sealed class SafeTensorsFile
{
    readonly Dictionary<string, SafeTensor> _byName;

    SafeTensorsFile(List<SafeTensor> tensors, Dictionary<string, string> metadata)
    {
        tensors.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        Tensors = tensors;
        Metadata = metadata;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>All tensors, ordered by name (ordinal).</summary>
    public IReadOnlyList<SafeTensor> Tensors { get; }

    /// <summary>The "__metadata__" map; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public IEnumerable<string> Names => Tensors.Select(t => t.Name);

    public int Count => Tensors.Count;

    public SafeTensor this[string name] => _byName.TryGetValue(name, out var t)
        ? t
        : throw new KeyNotFoundException($"No tensor named '{name}' in this safetensors file.");

    public bool Contains(string name) => _byName.ContainsKey(name);

    public bool TryGet(string name, out SafeTensor tensor) => _byName.TryGetValue(name, out tensor!);

    /// <summary>Reads and validates a file. Each tensor gets its own array, so files over 2 GB work as long as each tensor is under 2 GB.</summary>
    public static SafeTensorsFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return Read(stream, path);
    }

    /// <summary>
    /// Reads from the current position to the end of <paramref name="stream"/>. A stream that cannot seek is
    /// first copied to memory, since its length must be known to validate the header.
    /// </summary>
    public static SafeTensorsFile Read(Stream stream, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var source = sourceName ?? "<stream>";
        if (!stream.CanSeek)
        {
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return Parse(copy.ToArray(), source);
        }

        long start = stream.Position;
        long total = stream.Length - start;
        SafeTensorsHeader.CheckMinimumLength(total, source);

        Span<byte> prefix = stackalloc byte[SafeTensorsHeader.PrefixSize];
        stream.ReadExactly(prefix);
        int headerLength = SafeTensorsHeader.CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(prefix), total, source);

        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        long dataStart = start + SafeTensorsHeader.PrefixSize + headerLength;
        var header = SafeTensorsHeader.Parse(headerBytes, total - SafeTensorsHeader.PrefixSize - headerLength, source);

        var tensors = new List<SafeTensor>(header.Entries.Count);
        foreach (var e in header.Entries)
        {
            // Lengths were checked against the stream's real size, so this allocation is bounded by the file.
            if (e.Length > Array.MaxLength)
                throw new NotSupportedException($"{source}: tensor '{e.Name}' has {e.Length} bytes, more than one .NET array can hold.");
            var data = new byte[e.Length];
            stream.Position = dataStart + e.Begin;
            stream.ReadExactly(data);
            tensors.Add(new SafeTensor(e.Name, e.DType, e.Shape, data));
        }
        return new SafeTensorsFile(tensors, header.Metadata);
    }

    /// <summary>Parses a whole file held in memory. Tensor data are slices of <paramref name="bytes"/>, not copies.</summary>
    public static SafeTensorsFile Parse(ReadOnlyMemory<byte> bytes, string? sourceName = null)
    {
        var source = sourceName ?? "<memory>";
        var span = bytes.Span;
        SafeTensorsHeader.CheckMinimumLength(span.Length, source);
        int headerLength = SafeTensorsHeader.CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(span), span.Length, source);

        int dataStart = SafeTensorsHeader.PrefixSize + headerLength;
        var data = bytes[dataStart..];
        var header = SafeTensorsHeader.Parse(bytes.Slice(SafeTensorsHeader.PrefixSize, headerLength), data.Length, source);

        var tensors = new List<SafeTensor>(header.Entries.Count);
        foreach (var e in header.Entries)
            tensors.Add(new SafeTensor(e.Name, e.DType, e.Shape, data.Slice((int)e.Begin, (int)e.Length)));
        return new SafeTensorsFile(tensors, header.Metadata);
    }
}
