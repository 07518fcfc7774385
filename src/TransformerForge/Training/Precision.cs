using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// Training precision: <c>fp32</c> everywhere, or mixed precision with <c>bf16</c> or <c>fp16</c> matmuls and
/// attention over float32 master weights and optimizer state (see <see cref="MixedPrecision"/>).
/// </summary>
public static class Precision
{
    public const string Fp32 = "fp32", Bf16 = "bf16", Fp16 = "fp16";
    public static IReadOnlyList<string> Names { get; } = new[] { Fp32, Bf16, Fp16 };

    /// <summary>The working dtype of <paramref name="name"/>: Float32, BFloat16 or Float16.</summary>
    public static ScalarType DType(string name) => name switch
    {
        Fp32 => ScalarType.Float32,
        Bf16 => ScalarType.BFloat16,
        Fp16 => ScalarType.Float16,
        _ => throw new ArgumentException($"unknown precision '{name}': use {string.Join(", ", Names)}"),
    };
}
