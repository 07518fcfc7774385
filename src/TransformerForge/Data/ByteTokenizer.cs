using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;

namespace TransformerForge.Data;

/// <summary>UTF-8 bytes as tokens: 256 ids, no training, encodes any text.</summary>
public sealed class ByteTokenizer : ITokenizer
{
    public const string KindName = "bytes";

    public static ByteTokenizer Instance { get; } = new();

    public string Kind => KindName;
    public int VocabSize => 256;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var bytes = Encoding.UTF8.GetBytes(text);
        var ids = new int[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) ids[i] = bytes[i];
        return ids;
    }

    public void Encode(ReadOnlySpan<char> text, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var rented = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(text.Length));
        try
        {
            var n = Encoding.UTF8.GetBytes(text, rented);
            ids.EnsureCapacity(ids.Count + n);
            for (var i = 0; i < n; i++) ids.Add(rented[i]);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Invalid UTF-8 (e.g. a sequence cut mid-character by sampling) decodes to U+FFFD rather than failing.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        var i = 0;
        foreach (var id in ids)
        {
            if ((uint)id > 255)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} at position {i} is outside the bytes vocabulary [0, 256).");
            bytes.Add((byte)id);
            i++;
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    public string ToJson() => TokenizerFile.Format(new JsonObject { ["kind"] = KindName });

    public void Save(string directory) => TokenizerFile.Write(directory, ToJson());
}
