using System.Runtime.InteropServices;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Labml;

/// <summary>
/// Minimal safetensors reader for the parity fixtures (F32 and F64 only), kept private to the tests until the
/// library's own reader lands on main. Format: 8-byte little-endian header length, a JSON header mapping names to
/// {dtype, shape, data_offsets}, then the raw little-endian tensor bytes.
/// </summary>
internal static class TestSafetensors
{
    public static Dictionary<string, Tensor> Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var headerLength = checked((int)BitConverter.ToUInt64(bytes, 0));
        using var header = JsonDocument.Parse(bytes.AsMemory(8, headerLength));
        var dataStart = 8 + headerLength;

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            var dtype = entry.Value.GetProperty("dtype").GetString();
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt32()).ToArray();
            var raw = bytes.AsSpan(dataStart + offsets[0], offsets[1] - offsets[0]);
            tensors[entry.Name] = dtype switch
            {
                "F32" => tensor(MemoryMarshal.Cast<byte, float>(raw).ToArray(), shape),
                "F64" => tensor(MemoryMarshal.Cast<byte, double>(raw).ToArray(), shape),
                _ => throw new NotSupportedException($"{path}: {entry.Name} has dtype {dtype}; the test reader knows F32 and F64."),
            };
        }
        return tensors;
    }
}
