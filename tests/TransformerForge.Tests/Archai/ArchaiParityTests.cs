using TransformerForge.Parity;
using Xunit.Abstractions;

namespace TransformerForge.Tests.Archai;

/// <summary>
/// Archai's Transformer++ token mixers and MixedAttentionBlock, through the parity runner: same weights in, same
/// numbers out in float64 (relative error ≤ 1e-9) and float32 (≤ 1e-4).
/// </summary>
public class ArchaiParityTests(ITestOutputHelper output)
{
    /// <summary>Every case folder of the archai family, found on disk.</summary>
    public static TheoryData<string> Cases() => TestPaths.Cases("archai");

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesArchai(string name)
    {
        var result = ParityRunner.Run(TestPaths.Fixture("archai", name), name);
        output.WriteLine(result.ToString());
        Assert.True(result.Pass, result.ToString());
        Assert.True(result.MaxRelativeError <= ParityRunner.F64Tolerance, result.ToString());
        Assert.True(result.F32RelativeError <= ParityRunner.F32Tolerance, result.ToString());
    }
}
