using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using TransformerForge.IO;

namespace TransformerForge.Tests.IO;

/// <summary>The pure-C# safetensors layer; nothing here loads libtorch.</summary>
public sealed class SafeTensorsTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tforge-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string TempPath(string name = "t.safetensors") => Path.Combine(_dir, name);

    public static TheoryData<SafeTensorDType> AllDTypes => new(Enum.GetValues<SafeTensorDType>());

    static byte[] RandomData(SafeTensorDType dtype, long elements, int seed)
    {
        var data = new byte[elements * dtype.ElementSize()];
        var rng = new Random(seed);
        rng.NextBytes(data);
        // torch reads bool bytes as 0/1; keep test data valid for the bridge too.
        if (dtype == SafeTensorDType.Bool)
            for (int i = 0; i < data.Length; i++) data[i] &= 1;
        return data;
    }

    static void AssertSame(SafeTensor expected, SafeTensor actual)
    {
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.DType, actual.DType);
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.Data.ToArray(), actual.Data.ToArray());
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void RoundTripsEveryDType(SafeTensorDType dtype)
    {
        var tensors = new[]
        {
            new SafeTensor("matrix", dtype, [2, 3], RandomData(dtype, 6, 1)),
            new SafeTensor("scalar", dtype, [], RandomData(dtype, 1, 2)),
            new SafeTensor("empty", dtype, [0, 4], Array.Empty<byte>()),
            new SafeTensor("cube", dtype, [3, 1, 5], RandomData(dtype, 15, 3)),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode ✓ \"quoted\"" };
        var path = TempPath();

        SafeTensorsWriter.Write(path, tensors, metadata);
        var fromFile = SafeTensorsFile.Read(path);
        var fromMemory = SafeTensorsFile.Parse(File.ReadAllBytes(path));

        foreach (var file in new[] { fromFile, fromMemory })
        {
            Assert.Equal(tensors.Length, file.Count);
            foreach (var t in tensors) AssertSame(t, file[t.Name]);
            Assert.Equal(metadata.OrderBy(kv => kv.Key), file.Metadata.OrderBy(kv => kv.Key));
            Assert.Equal(tensors.Select(t => t.Name).Order(StringComparer.Ordinal), file.Names);
        }
    }

    [Fact]
    public void TupleOverloadAndStreamsRoundTrip()
    {
        var path = TempPath();
        SafeTensorsWriter.Write(path, [("b", SafeTensorDType.I32, new long[] { 2 }, new ReadOnlyMemory<byte>(new byte[8] { 1, 0, 0, 0, 2, 0, 0, 0 }))]);
        using var nonSeekable = new NonSeekableStream(File.ReadAllBytes(path));
        var file = SafeTensorsFile.Read(nonSeekable, "pipe");
        Assert.Equal(new long[] { 2 }, file["b"].Shape);
        Assert.Equal(new byte[] { 1, 0, 0, 0, 2, 0, 0, 0 }, file["b"].Data.ToArray());
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void MixedDTypesAreOrderedLikeTheReferenceAndStayAligned()
    {
        var tensors = Enum.GetValues<SafeTensorDType>()
            .Select((d, i) => new SafeTensor($"t{i}", d, [3], RandomData(d, 3, i))).ToList();
        var bytes = SafeTensorsWriter.ToBytes(tensors);

        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        var order = new[] { "\"I64\"", "\"F64\"", "\"F32\"", "\"I32\"", "\"BF16\"", "\"F16\"", "\"U8\"", "\"BOOL\"" }
            .Select(d => header.IndexOf(d, StringComparison.Ordinal)).ToList();
        Assert.Equal(order.Order(), order);

        var file = SafeTensorsFile.Parse(bytes);
        foreach (var t in tensors) AssertSame(t, file[t.Name]);
    }

    // Known answers: the exact bytes the format's reference writer produces for these inputs.
    [Theory]
    [InlineData("attn.0", new long[] { 1, 2, 3 }, "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", 0)]
    [InlineData("attn0", new long[] { 1, 1, 2, 3 }, "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}", 7)]
    public void WritesReferenceLayout(string name, long[] shape, string json, int padding)
    {
        var data = new[] { 0f, 1f, 2f, 3f, 4f, 5f }.SelectMany(BitConverter.GetBytes).ToArray();
        var bytes = SafeTensorsWriter.ToBytes([new SafeTensor(name, SafeTensorDType.F32, shape, data)]);

        var header = json + new string(' ', padding);
        var expected = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(expected, (ulong)header.Length);
        Encoding.ASCII.GetBytes(header).CopyTo(expected, 8);
        data.CopyTo(expected, 8 + header.Length);
        Assert.Equal(expected, bytes);
    }

    [Fact]
    public void WritesReferenceLayoutForEmptyFiles()
    {
        Assert.Equal(Encoding.ASCII.GetBytes("\b\0\0\0\0\0\0\0{}      "), SafeTensorsWriter.ToBytes([]));
        Assert.Equal(Encoding.ASCII.GetBytes("(\0\0\0\0\0\0\0{\"__metadata__\":{\"framework\":\"pt\"}}     "),
            SafeTensorsWriter.ToBytes([], new Dictionary<string, string> { ["framework"] = "pt" }));
    }

    [Fact]
    public void OverwritesAtomicallyAndLeavesNoTemporaryFiles()
    {
        var path = TempPath();
        SafeTensorsWriter.Write(path, [new SafeTensor("a", SafeTensorDType.U8, [1], new byte[] { 1 })]);
        SafeTensorsWriter.Write(path, [new SafeTensor("b", SafeTensorDType.U8, [2], new byte[] { 2, 3 })]);

        var file = SafeTensorsFile.Read(path);
        Assert.Equal(new[] { "b" }, file.Names);
        Assert.Equal(new[] { path }, Directory.GetFiles(_dir));
    }

    [Fact]
    public void RejectedWriteKeepsTheOldFile()
    {
        var path = TempPath();
        SafeTensorsWriter.Write(path, [new SafeTensor("a", SafeTensorDType.U8, [1], new byte[] { 1 })]);
        var before = File.ReadAllBytes(path);

        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [new SafeTensor("a", SafeTensorDType.F32, [2], new byte[4])]));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(_dir));
    }

    [Fact]
    public void WriterRejectsBadTensors()
    {
        var ok = new SafeTensor("a", SafeTensorDType.U8, [1], new byte[1]);
        Assert.Contains("Duplicate tensor name 'a'", Assert.Throws<ArgumentException>(() => SafeTensorsWriter.ToBytes([ok, ok])).Message);
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() =>
            SafeTensorsWriter.ToBytes([ok with { Name = "__metadata__" }])).Message);
        Assert.Contains("negative dimension", Assert.Throws<ArgumentException>(() =>
            SafeTensorsWriter.ToBytes([ok with { Shape = [-1] }])).Message);
        Assert.Contains("needs 8 bytes", Assert.Throws<ArgumentException>(() =>
            SafeTensorsWriter.ToBytes([new SafeTensor("x", SafeTensorDType.F32, [2], new byte[7])])).Message);
    }

    // ---- real files -------------------------------------------------------------------------

    [Fact]
    public void ReadsDecoderFixture()
    {
        var file = SafeTensorsFile.Read(TestPaths.Fixture("xtransformers", "decoder_base", "weights.safetensors"));

        Assert.Equal(32, file.Count);
        Assert.Empty(file.Metadata);
        Assert.All(file.Tensors, t => Assert.Equal(SafeTensorDType.F32, t.DType));
        var toQ = file["attn_layers.layers.0.1.to_q.weight"];
        Assert.Equal(new long[] { 256, 32 }, toQ.Shape);
        Assert.Equal(SafeTensorDType.F32, toQ.DType);
        Assert.Equal(256 * 32 * 4, toQ.Data.Length);
        // First two values, read independently with Python's struct module.
        Assert.Equal(0.13065259158611298f, BinaryPrimitives.ReadSingleLittleEndian(toQ.Data.Span));
        Assert.Equal(-0.22868676483631134f, BinaryPrimitives.ReadSingleLittleEndian(toQ.Data.Span[4..]));
        Assert.Equal(new long[] { 64, 32 }, file["token_emb.weight"].Shape);
    }

    [Fact]
    public void RewritingEveryFixtureReproducesItByteForByte()
    {
        var paths = Directory.GetFiles(TestPaths.Fixtures, "*.safetensors", SearchOption.AllDirectories);
        Assert.NotEmpty(paths);
        foreach (var path in paths)
        {
            var original = File.ReadAllBytes(path);
            var file = SafeTensorsFile.Parse(original, path);
            var rewritten = SafeTensorsWriter.ToBytes(file.Tensors, file.Metadata);
            Assert.True(original.AsSpan().SequenceEqual(rewritten), $"rewrite of {path} differs");
        }
    }

    // ---- malformed input --------------------------------------------------------------------

    /// <summary>Prefix + header text + zeroed data buffer.</summary>
    static byte[] Raw(string header, int dataLength = 0) => Raw((ulong)Encoding.UTF8.GetByteCount(header), Encoding.UTF8.GetBytes(header), dataLength);

    static byte[] Raw(ulong declaredHeaderLength, byte[] header, int dataLength = 0)
    {
        var bytes = new byte[8 + header.Length + dataLength];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredHeaderLength);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    /// <summary>Both entry points (file and memory) must reject the bytes, naming the source and the problem.</summary>
    void AssertInvalid(byte[] bytes, params string[] fragments)
    {
        var path = TempPath("bad.safetensors");
        File.WriteAllBytes(path, bytes);

        var fromFile = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(path));
        Assert.Contains(path, fromFile.Message);
        var fromMemory = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Parse(bytes, "in-memory copy"));
        Assert.Contains("in-memory copy", fromMemory.Message);

        foreach (var fragment in fragments)
        {
            Assert.Contains(fragment, fromFile.Message);
            Assert.Contains(fragment, fromMemory.Message);
        }
    }

    const string Ok = "\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]";

    [Fact]
    public void RejectsFileShorterThanPrefix() => AssertInvalid([1, 2, 3], "3 bytes", "shorter than the 8-byte");

    [Fact]
    public void RejectsHeaderLengthBeyondFile() => AssertInvalid(Raw(1000, "{}"u8.ToArray()), "header length 1000", "file size 10 bytes");

    [Fact]
    public void RejectsAbsurdHeaderLengthQuicklyWithoutAllocating()
    {
        var bytes = Raw(1UL << 62, "{}      "u8.ToArray());
        var path = TempPath("huge.safetensors");
        File.WriteAllBytes(path, bytes);

        var watch = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var fromFile = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(path));
        var fromMemory = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Parse(bytes));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        watch.Stop();

        Assert.Contains($"header length {1UL << 62}", fromFile.Message);
        Assert.Contains($"header length {1UL << 62}", fromMemory.Message);
        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"took {watch.Elapsed}");
    }

    [Fact]
    public void RejectsHeaderOverTheSizeLimitWithoutReadingIt()
    {
        // A 300 MB "file" whose header claims 200 MB: plausible against the file size, but over the 100 MB cap.
        using var stream = new SparseStream(Raw(200_000_000, []), 300_000_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(stream, "sparse"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains("sparse", e.Message);
        Assert.Contains("header length 200000000 exceeds the 100000000-byte limit", e.Message);
        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes");
    }

    [Fact]
    public void RejectsInvalidJson() => AssertInvalid(Raw("{\"a\": {"), "header is not valid JSON");

    [Fact]
    public void RejectsInvalidUtf8() => AssertInvalid(Raw(8, [(byte)'{', (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)':', (byte)'1', (byte)'}']), "header is not valid UTF-8");

    [Fact]
    public void RejectsEmptyHeader() => AssertInvalid(Raw(""), "not valid JSON");

    [Fact]
    public void RejectsHeaderThatIsNotAnObject() => AssertInvalid(Raw("[1, 2]"), "header must begin with '{'");

    [Fact]
    public void RejectsEntryThatIsNotAnObject() => AssertInvalid(Raw("{\"a\": 5}"), "tensor 'a'", "must be a JSON object");

    [Theory]
    [InlineData("dtype", "{\"a\":{\"shape\":[4],\"data_offsets\":[0,4]}}")]
    [InlineData("shape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,4]}}")]
    [InlineData("data_offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4]}}")]
    public void RejectsEntryMissingAField(string field, string header) => AssertInvalid(Raw(header, 4), $"tensor 'a' is missing '{field}'");

    [Fact]
    public void RejectsUnknownDType() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4), "tensor 'a'", "unsupported dtype 'F8_E4M3'");

    [Fact]
    public void RejectsNegativeDimension() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[2,-3],\"data_offsets\":[0,6]}}", 6), "tensor 'a'", "negative dimension -3");

    [Fact]
    public void RejectsNonIntegerDimension() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[2.5],\"data_offsets\":[0,2]}}", 2), "shape element 2.5 is not an integer");

    [Fact]
    public void RejectsShapeWhoseByteCountOverflows() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}"), "tensor 'a'", "overflows");

    [Fact]
    public void RejectsShapeThatDisagreesWithOffsets() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20), "tensor 'a'", "needs 24 bytes", "span 20");

    [Fact]
    public void RejectsBeginAfterEnd() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8), "tensor 'a'", "begin 8 is greater than end 4");

    [Fact]
    public void RejectsMalformedOffsets() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0]}}", 4), "tensor 'a'", "'data_offsets' must be an array [begin, end]");

    [Fact]
    public void RejectsNegativeOffset() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[-4,0]}}", 4), "tensor 'a'", "not a non-negative integer");

    [Fact]
    public void RejectsOffsetsOutOfRange() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[24],\"data_offsets\":[0,24]}}", 8), "tensor 'a'", "out of range", "holds 8 bytes");

    [Fact]
    public void RejectsOffsetsBeyondUInt64Range() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[18446744073709551615,18446744073709551615]}}"), "tensor 'a'", "not a non-negative integer within range");

    [Fact]
    public void RejectsOverlappingTensors() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}", 12),
            "'a' [0, 8] and 'b' [4, 12] have overlapping data_offsets");

    [Fact]
    public void RejectsGapBetweenTensors() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}", 12),
            "gap in the data buffer", "[4, 8)", "'b'");

    [Fact]
    public void RejectsTrailingBytes() => AssertInvalid(Raw($"{{\"a\":{{{Ok}}}}}", 8), "4 trailing bytes");

    [Fact]
    public void RejectsDuplicateNames() =>
        AssertInvalid(Raw($"{{\"a\":{{{Ok}}},\"a\":{{{Ok}}}}}", 4), "duplicate tensor name 'a'");

    [Fact]
    public void RejectsTruncatedData()
    {
        var full = SafeTensorsWriter.ToBytes([
            new SafeTensor("a", SafeTensorDType.F32, [4], new byte[16]),
            new SafeTensor("b", SafeTensorDType.F32, [4], new byte[16]),
        ]);
        AssertInvalid(full[..^5], "tensor 'b'", "holds 27 bytes", "truncated");
    }

    [Fact]
    public void RejectsNonStringMetadata() =>
        AssertInvalid(Raw($"{{\"__metadata__\":{{\"k\":1}},\"a\":{{{Ok}}}}}", 4), "'__metadata__' value for key 'k' must be a string, but it is a number");

    [Fact]
    public void RejectsMetadataThatIsNotAnObject() =>
        AssertInvalid(Raw("{\"__metadata__\":\"x\"}"), "'__metadata__' must be a JSON object");

    // ---- as strict as the reference reader (issue 12) -------------------------------------------------------------

    [Fact]
    public void RejectsALoneSurrogateInATensorName() =>
        AssertInvalid(Raw($"{{\"a\\ud800\":{{{Ok}}}}}", 4), "not valid UTF-16");

    [Fact]
    public void RejectsALoneSurrogateInMetadata() =>
        AssertInvalid(Raw($"{{\"__metadata__\":{{\"k\":\"\\udc00\"}},\"a\":{{{Ok}}}}}", 4), "__metadata__", "not valid UTF-16");

    [Fact]
    public void RejectsADuplicateFieldInAnEntry() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4),
            "tensor 'a' has the field 'dtype' more than once");

    [Fact]
    public void RejectsADuplicateMetadataKey() =>
        AssertInvalid(Raw($"{{\"__metadata__\":{{\"k\":\"1\",\"k\":\"2\"}},\"a\":{{{Ok}}}}}", 4), "'__metadata__' contains key 'k' more than once");

    [Theory]
    [InlineData(" ")]
    [InlineData("\n")]
    [InlineData("\t")]
    public void RejectsAHeaderThatDoesNotBeginWithABrace(string lead) =>
        AssertInvalid(Raw($"{lead}{{\"a\":{{{Ok}}}}}", 4), "header must begin with '{'");

    [Fact]
    public void AcceptsTrailingSpacePadding()
    {
        var file = SafeTensorsFile.Parse(Raw($"{{\"a\":{{{Ok}}}}}     ", 4));
        Assert.Equal(4, file["a"].Data.Length);
    }

    /// <summary>[0, 2^62, 2^62] holds no bytes, so the byte count is 0, but torch's strides would overflow.</summary>
    [Fact]
    public void RejectsAnEmptyShapeWhoseStridesOverflow() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4611686018427387904,4611686018427387904],\"data_offsets\":[0,0]}}"),
            "tensor 'a'", "overflows 64-bit strides");

    [Fact]
    public void AcceptsEmptyTensorsWithOrdinaryShapes()
    {
        var file = SafeTensorsFile.Parse(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,1024,1024],\"data_offsets\":[0,0]}}"));
        Assert.Equal(0, file["a"].ElementCount);
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("F32 ")]
    [InlineData("float32")]
    [InlineData("I8")]
    public void RejectsDTypeNamesTheFormatDoesNotSpell(string dtype) =>
        AssertInvalid(Raw($"{{\"a\":{{\"dtype\":\"{dtype}\",\"shape\":[4],\"data_offsets\":[0,4]}}}}", 4), $"dtype '{dtype}'");

    [Fact]
    public void RejectsOffsetsThatAreNotIntegers() =>
        AssertInvalid(Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4.0]}}", 4), "not a non-negative integer");

    /// <summary>Serves a short prefix and then zeros up to a large declared length, without holding those bytes.</summary>
    sealed class SparseStream(byte[] prefix, long length) : Stream
    {
        long _position;
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => _position = value; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = (int)Math.Clamp(length - _position, 0, count);
            for (int i = 0; i < n; i++)
                buffer[offset + i] = _position + i < prefix.Length ? prefix[_position + i] : (byte)0;
            _position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };

        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
