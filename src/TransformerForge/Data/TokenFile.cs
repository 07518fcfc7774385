using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

namespace TransformerForge.Data;

/// <summary>
/// A tokenized corpus on disk, read through a memory map so only the pages a batch touches are resident.
/// Layout (little-endian): a 64-byte header — magic <c>TFTOKENS</c>, format version (int32), bytes per token (int32:
/// 2 for uint16 when the vocabulary fits, else 4 for int32), token count (int64), vocabulary size (int32), 4 reserved
/// bytes, a 32-byte fingerprint of the source files and tokenizer — followed by the token ids.
/// </summary>
public sealed unsafe class TokenFile : IDisposable
{
    public const int HeaderBytes = 64;
    const int Version = 1;
    static ReadOnlySpan<byte> Magic => "TFTOKENS"u8;

    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    readonly byte* _tokens;
    bool _disposed;

    TokenFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* tokens, Header header)
    {
        Path = path;
        _map = map;
        _view = view;
        _tokens = tokens;
        Count = header.Count;
        BytesPerToken = header.BytesPerToken;
        VocabSize = header.VocabSize;
        Fingerprint = header.Fingerprint;
    }

    public string Path { get; }
    public long Count { get; }
    /// <summary>2 (uint16) or 4 (int32).</summary>
    public int BytesPerToken { get; }
    public int VocabSize { get; }
    public byte[] Fingerprint { get; }

    /// <summary>Bytes per token for a vocabulary: uint16 halves the file whenever every id fits.</summary>
    public static int BytesPerTokenFor(int vocabSize) => vocabSize <= 65536 ? 2 : 4;

    public static TokenFile Open(string path)
    {
        var header = ReadHeader(path)
            ?? throw new InvalidDataException($"Token file '{path}' is not a TransformerForge token file or is truncated; delete it to rebuild.");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
        try
        {
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            return new TokenFile(path, map, view, p + view.PointerOffset + HeaderBytes, header);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>The header of a complete token file, or null when the file is missing, foreign or truncated.</summary>
    public static Header? ReadHeader(string path)
    {
        if (!File.Exists(path)) return null;
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> h = stackalloc byte[HeaderBytes];
        if (f.Length < HeaderBytes || f.ReadAtLeast(h, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes) return null;
        if (!h[..8].SequenceEqual(Magic) || BinaryPrimitives.ReadInt32LittleEndian(h[8..]) != Version) return null;
        var header = new Header(
            BinaryPrimitives.ReadInt32LittleEndian(h[12..]),
            BinaryPrimitives.ReadInt64LittleEndian(h[16..]),
            BinaryPrimitives.ReadInt32LittleEndian(h[24..]),
            h[32..64].ToArray());
        if (header.BytesPerToken is not (2 or 4) || header.Count < 0) return null;
        return f.Length == HeaderBytes + header.Count * header.BytesPerToken ? header : null;
    }

    public int this[long index]
    {
        get
        {
            if ((ulong)index >= (ulong)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"Token index outside [0, {Count}).");
            ThrowIfDisposed();
            return BytesPerToken == 2 ? ((ushort*)_tokens)[index] : ((int*)_tokens)[index];
        }
    }

    /// <summary>Copies tokens [start, start + destination.Length) into <paramref name="destination"/>.</summary>
    public void Read(long start, Span<long> destination)
    {
        CheckRange(start, destination.Length);
        if (BytesPerToken == 2)
        {
            var src = new ReadOnlySpan<ushort>((ushort*)_tokens + start, destination.Length);
            for (var i = 0; i < src.Length; i++) destination[i] = src[i];
        }
        else
        {
            var src = new ReadOnlySpan<int>((int*)_tokens + start, destination.Length);
            for (var i = 0; i < src.Length; i++) destination[i] = src[i];
        }
    }

    /// <summary>Copies tokens [start, start + destination.Length) into <paramref name="destination"/>.</summary>
    public void Read(long start, Span<int> destination)
    {
        CheckRange(start, destination.Length);
        if (BytesPerToken == 2)
        {
            var src = new ReadOnlySpan<ushort>((ushort*)_tokens + start, destination.Length);
            for (var i = 0; i < src.Length; i++) destination[i] = src[i];
        }
        else new ReadOnlySpan<int>((int*)_tokens + start, destination.Length).CopyTo(destination);
    }

    void CheckRange(long start, int count)
    {
        if (start < 0 || start + count > Count)
            throw new ArgumentOutOfRangeException(nameof(start), start, $"Tokens [{start}, {start + count}) are outside the token file's [0, {Count}).");
        ThrowIfDisposed();
    }

    void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    public sealed record Header(int BytesPerToken, long Count, int VocabSize, byte[] Fingerprint);

    /// <summary>
    /// Writes a token file to a temporary name and moves it into place when complete, so a crash or a concurrent
    /// reader never sees a half-written file under the final name.
    /// </summary>
    public sealed class Writer : IDisposable
    {
        readonly string _path;
        readonly string _temp;
        readonly FileStream _stream;
        readonly int _vocabSize;
        readonly byte[] _fingerprint;
        readonly byte[] _buffer = new byte[1 << 16];
        long _count;
        bool _done;

        public Writer(string path, int vocabSize, byte[] fingerprint)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
            if (fingerprint.Length != 32) throw new ArgumentException("The fingerprint must be 32 bytes (SHA-256).", nameof(fingerprint));
            _path = path;
            _vocabSize = vocabSize;
            _fingerprint = fingerprint;
            BytesPerToken = BytesPerTokenFor(vocabSize);
            _temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
            _stream = new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            _stream.Write(new byte[HeaderBytes]);
        }

        public int BytesPerToken { get; }
        public long Count => _count;

        public void Append(ReadOnlySpan<int> ids)
        {
            var perBuffer = _buffer.Length / BytesPerToken;
            while (!ids.IsEmpty)
            {
                var n = Math.Min(perBuffer, ids.Length);
                for (var i = 0; i < n; i++)
                {
                    var id = ids[i];
                    if ((uint)id >= (uint)_vocabSize)
                        throw new InvalidDataException($"Token id {id} is outside the vocabulary [0, {_vocabSize}).");
                    if (BytesPerToken == 2) BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(2 * i), (ushort)id);
                    else BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(4 * i), id);
                }
                _stream.Write(_buffer, 0, n * BytesPerToken);
                _count += n;
                ids = ids[n..];
            }
        }

        /// <summary>Writes the header and moves the file to its final name.</summary>
        public void Complete()
        {
            Span<byte> h = stackalloc byte[HeaderBytes];
            h.Clear();
            Magic.CopyTo(h);
            BinaryPrimitives.WriteInt32LittleEndian(h[8..], Version);
            BinaryPrimitives.WriteInt32LittleEndian(h[12..], BytesPerToken);
            BinaryPrimitives.WriteInt64LittleEndian(h[16..], _count);
            BinaryPrimitives.WriteInt32LittleEndian(h[24..], _vocabSize);
            _fingerprint.CopyTo(h[32..]);
            _stream.Position = 0;
            _stream.Write(h);
            _stream.Dispose();
            File.Move(_temp, _path, overwrite: true);
            _done = true;
        }

        public void Dispose()
        {
            _stream.Dispose();
            if (!_done && File.Exists(_temp)) File.Delete(_temp);
        }
    }
}
