namespace TransformerForge.IO;

/// <summary>Element sizes and header spellings of <see cref="SafeTensorDType"/>.</summary>
public static class SafeTensorDTypeExtensions
{
    /// <summary>The spellings accepted in headers, for error messages.</summary>
    public const string SupportedNames = "F64, F32, F16, BF16, I64, I32, U8, BOOL";

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 or SafeTensorDType.I64 => 8,
        SafeTensorDType.F32 or SafeTensorDType.I32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 => 2,
        SafeTensorDType.U8 or SafeTensorDType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>The name written in the header's "dtype" field.</summary>
    public static string ToHeaderName(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 => "F64",
        SafeTensorDType.F32 => "F32",
        SafeTensorDType.F16 => "F16",
        SafeTensorDType.BF16 => "BF16",
        SafeTensorDType.I64 => "I64",
        SafeTensorDType.I32 => "I32",
        SafeTensorDType.U8 => "U8",
        SafeTensorDType.Bool => "BOOL",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>
    /// Position in the reference writer's data order (smaller first): its dtype list runs in increasing
    /// alignment and it writes in reverse, so 8-byte types come first and every tensor stays aligned to its element size.
    /// </summary>
    internal static int WriteRank(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.I64 => 0,
        SafeTensorDType.F64 => 1,
        SafeTensorDType.F32 => 2,
        SafeTensorDType.I32 => 3,
        SafeTensorDType.BF16 => 4,
        SafeTensorDType.F16 => 5,
        SafeTensorDType.U8 => 6,
        SafeTensorDType.Bool => 7,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>Parses a header "dtype" value; the format spells them in upper case and so do we (no case folding).</summary>
    public static bool TryParseHeaderName(string name, out SafeTensorDType dtype)
    {
        switch (name)
        {
            case "F64": dtype = SafeTensorDType.F64; return true;
            case "F32": dtype = SafeTensorDType.F32; return true;
            case "F16": dtype = SafeTensorDType.F16; return true;
            case "BF16": dtype = SafeTensorDType.BF16; return true;
            case "I64": dtype = SafeTensorDType.I64; return true;
            case "I32": dtype = SafeTensorDType.I32; return true;
            case "U8": dtype = SafeTensorDType.U8; return true;
            case "BOOL": dtype = SafeTensorDType.Bool; return true;
            default: dtype = default; return false;
        }
    }
}
