namespace TransformerForge.IO;

/// <summary>
/// One named tensor as the format stores it: element type, shape, and its raw little-endian bytes in row-major order.
/// </summary>
public sealed record SafeTensor(string Name, SafeTensorDType DType, long[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>Number of elements (1 for a scalar, whose shape is empty).</summary>
    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (var d in Shape) count = checked(count * d);
            return count;
        }
    }

    /// <summary>Shape as the header writes it, e.g. "[2, 3]".</summary>
    public string ShapeText => FormatShape(Shape);

    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
