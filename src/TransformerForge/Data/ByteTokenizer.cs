using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;

namespace TransformerForge.Data;

/// <summary>
/// Bytes as tokens: 256 ids, no training. Text is encoded as UTF-8; raw bytes (<see cref="EncodeBytes"/>, and every
/// corpus) as they are, so any file round-trips byte for byte through <see cref="DecodeBytes"/>.
/// </summary>
public sealed class ByteTokenizer : IByteLevelTokenizer
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

    public void EncodeBytes(ReadOnlySpan<byte> bytes, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ids.EnsureCapacity(ids.Count + bytes.Length);
        foreach (var b in bytes) ids.Add(b);
    }

    public byte[] DecodeBytes(IEnumerable<int> ids)
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
        return bytes.ToArray();
    }

    /// <summary>As text: invalid UTF-8 (e.g. a sequence cut mid-character by sampling) shows as U+FFFD; <see cref="DecodeBytes"/> is exact.</summary>
    public string Decode(IEnumerable<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    public string ToJson() => TokenizerFile.Format(new JsonObject { ["kind"] = KindName });

    public void Save(string directory) => TokenizerFile.Write(directory, ToJson());
}
