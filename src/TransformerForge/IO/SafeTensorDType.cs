namespace TransformerForge.IO;

/// <summary>The safetensors element types this library reads and writes (a subset of the format's list).</summary>
public enum SafeTensorDType
{
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    U8,
    Bool,
}
