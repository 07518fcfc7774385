using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.IO;

/// <summary>
/// Converts between safetensors entries and TorchSharp tensors by copying raw bytes, so F16/BF16 values
/// are carried bit for bit (never through float).
/// </summary>
public static class SafeTensorsTorch
{
    /// <summary>Loads every tensor of a file onto the CPU. The caller owns (and disposes) the tensors.</summary>
    public static Dictionary<string, Tensor> Load(string path) => ToTensors(SafeTensorsFile.Read(path));

    /// <summary>Creates a CPU tensor for each entry of <paramref name="file"/>.</summary>
    public static Dictionary<string, Tensor> ToTensors(SafeTensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in file.Tensors) result.Add(entry.Name, ToTensor(entry));
        }
        catch
        {
            // Don't leak native memory for the tensors made before the failure.
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>A new CPU tensor with the entry's dtype, shape and bytes.</summary>
    public static Tensor ToTensor(SafeTensor entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        CheckLittleEndian();
        // Sizes are checked before libtorch allocates anything: a hand-made entry may claim any shape.
        long expected;
        try { expected = checked(entry.ElementCount * entry.DType.ElementSize()); }
        catch (OverflowException) { throw new ArgumentException($"Tensor '{entry.Name}': shape {entry.ShapeText} overflows a 64-bit byte count.", nameof(entry)); }
        if (entry.Shape.Any(d => d < 0) || !SafeTensorsHeader.StridesFit(entry.Shape, entry.DType.ElementSize()))
            throw new ArgumentException($"Tensor '{entry.Name}': shape {entry.ShapeText} is negative or overflows 64-bit strides.", nameof(entry));
        if (entry.Data.Length != expected)
            throw new ArgumentException($"Tensor '{entry.Name}': shape {entry.ShapeText} of {entry.DType.ToHeaderName()} needs {expected} bytes, but has {entry.Data.Length}.", nameof(entry));
        var tensor = empty(entry.Shape, dtype: ToScalarType(entry.DType), device: CPU);
        try
        {
            // bytes is a span over the tensor's own memory: one copy, straight from the file's bytes.
            if (expected != 0) entry.Data.Span.CopyTo(tensor.bytes);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return tensor;
    }

    /// <summary>Copies a tensor (from any device, any layout) into a safetensors entry.</summary>
    public static SafeTensor FromTensor(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(tensor);
        CheckLittleEndian();
        var dtype = ToSafeTensorDType(tensor.dtype, name);
        // Intermediate copies (cpu, contiguous) are disposed with the scope; the caller's tensor is not touched.
        using var scope = NewDisposeScope();
        var cpu = tensor.detach().cpu().contiguous();
        var data = cpu.NumberOfElements == 0 ? [] : cpu.bytes.ToArray();
        return new SafeTensor(name, dtype, cpu.shape, data);
    }

    /// <summary>Saves tensors (moved to CPU and made contiguous) atomically to <paramref name="path"/>.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var entries = tensors.Select(kv => FromTensor(kv.Key, kv.Value)).ToList();
        SafeTensorsWriter.Write(path, entries, metadata);
    }

    public static ScalarType ToScalarType(SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 => ScalarType.Float64,
        SafeTensorDType.F32 => ScalarType.Float32,
        SafeTensorDType.F16 => ScalarType.Float16,
        SafeTensorDType.BF16 => ScalarType.BFloat16,
        SafeTensorDType.I64 => ScalarType.Int64,
        SafeTensorDType.I32 => ScalarType.Int32,
        SafeTensorDType.U8 => ScalarType.Byte,
        SafeTensorDType.Bool => ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>The safetensors dtype for a torch dtype; throws <see cref="NotSupportedException"/> for the others (int8, complex, quantized ...).</summary>
    public static SafeTensorDType ToSafeTensorDType(ScalarType type) => ToSafeTensorDType(type, null);

    static SafeTensorDType ToSafeTensorDType(ScalarType type, string? name) => type switch
    {
        ScalarType.Float64 => SafeTensorDType.F64,
        ScalarType.Float32 => SafeTensorDType.F32,
        ScalarType.Float16 => SafeTensorDType.F16,
        ScalarType.BFloat16 => SafeTensorDType.BF16,
        ScalarType.Int64 => SafeTensorDType.I64,
        ScalarType.Int32 => SafeTensorDType.I32,
        ScalarType.Byte => SafeTensorDType.U8,
        ScalarType.Bool => SafeTensorDType.Bool,
        _ => throw new NotSupportedException(
            (name is null ? "" : $"Tensor '{name}': ") + $"dtype {type} cannot be stored (supported: {SafeTensorDTypeExtensions.SupportedNames})."),
    };

    // The format is little-endian and tensor memory is copied as is.
    static void CheckLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors byte copies assume a little-endian machine.");
    }
}
