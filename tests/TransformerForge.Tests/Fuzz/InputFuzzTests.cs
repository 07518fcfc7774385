using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using CsCheck;
using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Runtime;
using Xunit.Abstractions;

namespace TransformerForge.Tests.Fuzz;

/// <summary>
/// Bounded fuzzing (CsCheck, a few seconds each) of the two readers users feed files to. Every input — valid files
/// mutated byte by byte and token by token — gives a result or the reader's specific exception
/// (<see cref="InvalidDataException"/> for safetensors, <see cref="ConfigException"/> for configurations), never
/// another exception type and never a crash; what is accepted can then be used (tensors made, models built).
/// A failure prints the seed and the shrunk input.
/// </summary>
public partial class InputFuzzTests(ITestOutputHelper output)
{
    /// <summary>The suite's bounded count, times <c>TFORGE_FUZZ_SCALE</c> for a deeper run by hand.</summary>
    static long Iterations(long ci) =>
        long.TryParse(Environment.GetEnvironmentVariable("TFORGE_FUZZ_SCALE"), out var scale) && scale > 0 ? ci * scale : ci;

    // ---- safetensors ----------------------------------------------------------------------------------------------

    static readonly byte[][] ValidFiles =
    [
        SafeTensorsWriter.ToBytes([
            new SafeTensor("a", SafeTensorDType.F32, [2, 3], new byte[24]),
            new SafeTensor("b.weight", SafeTensorDType.I64, [2], new byte[16]),
            new SafeTensor("c", SafeTensorDType.U8, [0, 4], Array.Empty<byte>()),
        ], new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcödé 🙂" }),
        SafeTensorsWriter.ToBytes([
            new SafeTensor("x", SafeTensorDType.BF16, [4], new byte[8]),
            new SafeTensor("y", SafeTensorDType.Bool, [], new byte[1]),
            new SafeTensor("z", SafeTensorDType.F16, [1, 1, 2], new byte[4]),
        ]),
    ];

    static readonly string[] Numbers =
        ["0", "-1", "1", "7", "4.0", "1e2", "-0", "1e400", "4294967296", "4611686018427387904", "9223372036854775807",
         "9223372036854775808", "18446744073709551615", "18446744073709551616", "2147483647"];

    static readonly string[] Strings = ["\\ud800", "\\udfff\\ud800", "\\u0000", "F32", "f32", "F8_E4M3", "BOOL", "__metadata__", "a", ""];

    static readonly byte[] Bytes = [0, 0xFF, (byte)'{', (byte)'}', (byte)'"', (byte)' ', (byte)'\\', (byte)'9', (byte)',', 0xC3, 0xED];

    /// <summary>Applies mutations (pairs of opcode and argument) to a valid file: bytes, the length prefix, header tokens.</summary>
    static byte[] MutateSafeTensors(int file, int[] ops)
    {
        var bytes = ValidFiles[file % ValidFiles.Length].ToArray();
        for (int i = 0; i + 1 < ops.Length; i += 2)
        {
            int op = Math.Abs(ops[i] % 10), arg = ops[i + 1] & int.MaxValue;
            if (bytes.Length < 8) break;
            int headerLength = (int)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(bytes), (ulong)(bytes.Length - 8));
            string header = Encoding.UTF8.GetString(bytes, 8, headerLength);
            var data = bytes[(8 + headerLength)..];
            switch (op)
            {
                case 0: bytes[arg % bytes.Length] ^= (byte)(1 << (arg / 7 % 8)); break;
                case 1: bytes[arg % bytes.Length] = Bytes[arg / 3 % Bytes.Length]; break;
                case 2: bytes = bytes[..(arg % bytes.Length)]; break;
                case 3: bytes = Rebuild(Replace(NumberToken(), header, arg, Numbers[arg / 5 % Numbers.Length]), data); break;
                case 4: bytes = Rebuild(Replace(StringToken(), header, arg, "\"" + Strings[arg / 5 % Strings.Length] + "\""), data); break;
                case 5: bytes = Rebuild(DuplicateField().Replace(header, m => m.Value + "," + m.Value, 1), data); break;
                case 6:
                    ulong[] lengths = [0, 1, (ulong)headerLength - 1, (ulong)headerLength + 1, 1UL << 62, ulong.MaxValue, 100_000_001];
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes, lengths[arg % lengths.Length]);
                    break;
                case 7: bytes = Rebuild(" " + header.TrimEnd(), data); break;
                case 8: bytes = [.. bytes, .. Enumerable.Repeat((byte)(arg % 256), 1 + arg % 9)]; break;
                default: bytes = Rebuild(Replace(DTypeValue(), header, arg, Strings[3 + arg / 5 % 4]), data); break;
            }
        }
        return bytes;
    }

    static byte[] Rebuild(string header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        return bytes;
    }

    static string Replace(Regex token, string text, int which, string replacement)
    {
        var matches = token.Matches(text);
        if (matches.Count == 0) return text;
        var m = matches[which % matches.Count];
        return text[..m.Index] + replacement + text[(m.Index + m.Length)..];
    }

    [GeneratedRegex(@"-?\d+(\.\d+)?([eE][+-]?\d+)?")]
    private static partial Regex NumberToken();
    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex StringToken();
    [GeneratedRegex("\"(dtype|shape|data_offsets)\":(\"[^\"]*\"|\\[[^\\]]*\\])")]
    private static partial Regex DuplicateField();
    [GeneratedRegex("(?<=\"dtype\":)\"[^\"]*\"")]
    private static partial Regex DTypeValue();

    [Fact]
    public void SafeTensorsReaderGivesAFileOrInvalidData()
    {
        int accepted = 0, refused = 0;
        var watch = Stopwatch.StartNew();
        Gen.Select(Gen.Int[0, 1], Gen.Int.Array[2, 6]).Sample((file, ops) =>
        {
            var bytes = MutateSafeTensors(file, ops);
            SafeTensorsFile parsed;
            try
            {
                parsed = SafeTensorsFile.Parse(bytes, "fuzz");
            }
            catch (InvalidDataException)
            {
                Interlocked.Increment(ref refused);
                return;
            }
            // What is accepted is usable: every tensor can be made (nothing libtorch would overflow on).
            foreach (var t in SafeTensorsTorch.ToTensors(parsed).Values) t.Dispose();
            Interlocked.Increment(ref accepted);
        }, iter: Iterations(4000), threads: 1);
        output.WriteLine($"safetensors: {accepted} accepted, {refused} refused in {watch.Elapsed.TotalSeconds:F1} s");
        Assert.True(refused > 1000 && accepted > 30, $"the mutations should both break and keep files ({accepted} accepted, {refused} refused)");
    }

    // ---- configurations ---------------------------------------------------------------------------------------------

    static readonly Lazy<string[]> Configs = new(() =>
        Directory.GetDirectories(TestPaths.Fixture("xtransformers")).Select(Path.GetFileName).Order()
            .Select(name =>
            {
                using var doc = StrictJson.ParseFile(TestPaths.Fixture("xtransformers", name!, "case.json"));
                return doc.RootElement.GetProperty("model").GetRawText();
            })
            .Append("""{"type": "FeedbackTransformer", "num_tokens": 13, "dim": 16, "depth": 2, "heads": 4, "shared_kv": true, "max_seq_len": 9}""")
            .ToArray());

    static readonly string[] ConfigNumbers =
        ["0", "-1", "1", "2", "3", "0.5", "1.5", "1e-9", "1e400", "-1e400", "64", "2147483647", "-2147483648", "2147483648", "4294967296", "1e18", "true", "null", "\"8\"", "[]", "[1, 2]"];

    static readonly string[] ConfigKeys =
        ["depth", "heads", "dim", "attn_dim_head", "ff_mult", "shift_tokens", "max_seq_len", "num_tokens", "rotary_emb_dim", "attn_num_mem_kv",
         "rel_pos_num_buckets", "alibi_num_heads", "attn_sparse_topk", "par_ratio", "sandwich_coef", "custom_layers", "type", "dim_in", "image_size",
         "patch_size", "num_memory_tokens", "max_mem_len", "emb_dim", "attn_dconv_kernel_size", "\\ud800", "d_ff", "unknown_key"];

    /// <summary>Mutates configuration text: number values, inserted keys (duplicates too), lone surrogates, truncation.</summary>
    static string MutateConfig(int config, int[] ops)
    {
        var text = Configs.Value[config % Configs.Value.Length];
        for (int i = 0; i + 1 < ops.Length; i += 2)
        {
            int op = Math.Abs(ops[i] % 6), arg = ops[i + 1] & int.MaxValue;
            var objectStart = ObjectStart().Matches(text);
            switch (op)
            {
                case 0: case 1:
                    text = Replace(ValueToken(), text, arg, ConfigNumbers[arg / 7 % ConfigNumbers.Length]);
                    break;
                case 2: case 3:
                    if (objectStart.Count == 0) break;
                    var at = objectStart[arg % objectStart.Count].Index + 1;
                    var entry = $"\"{ConfigKeys[arg / 3 % ConfigKeys.Length]}\": {ConfigNumbers[arg / 11 % ConfigNumbers.Length]}, ";
                    text = text[..at] + entry + text[at..];
                    break;
                case 4:
                    text = Replace(StringToken(), text, arg, "\"" + Strings[arg / 5 % 3] + "\"");
                    break;
                default:
                    text = text[..(arg % (text.Length + 1))];
                    break;
            }
        }
        return text;
    }

    [GeneratedRegex(@"(?<=: *)(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)")]
    private static partial Regex ValueToken();
    [GeneratedRegex(@"\{")]
    private static partial Regex ObjectStart();

    [Fact]
    public void ConfigurationLoaderGivesAModelOrAConfigException()
    {
        int accepted = 0, refused = 0, built = 0;
        var watch = Stopwatch.StartNew();
        Gen.Select(Gen.Int[0, 1000], Gen.Int.Array[2, 4]).Sample((config, ops) =>
        {
            var text = MutateConfig(config, ops);
            ModelConfig parsed;
            try
            {
                parsed = ModelConfig.Parse(text);
            }
            catch (ConfigException)
            {
                refused++;
                return;
            }
            accepted++;
            long parameters;
            try { parameters = ModelSize.ParameterCount(parsed); }
            catch (ConfigException) { return; }   // sizes past 64 bits
            // Small enough to build quickly: the model builds (or is refused for memory) — no libtorch error, no abort.
            if (parameters > 2_000_000) return;
            try
            {
                using var model = ModelFactory.Create(parsed);
                built++;
            }
            catch (MemoryLimitException) { }
        }, iter: Iterations(1000), threads: 1);
        output.WriteLine($"configurations: {accepted} accepted ({built} built), {refused} refused in {watch.Elapsed.TotalSeconds:F1} s");
        Assert.True(refused > 200 && built > 20, $"the mutations should both break and keep configurations ({accepted} accepted, {built} built, {refused} refused)");
    }
}
