using TransformerForge.Parity;
using Xunit.Abstractions;

namespace TransformerForge.Tests.Labml;

/// <summary>
/// labml's Primer MDHA, Feedback Transformer and Feedback Transformer KV fixtures, through the parity runner: same
/// weights in, same numbers out in float64 (relative error ≤ 1e-9) and float32 (≤ 1e-4).
/// </summary>
public class LabmlParityTests(ITestOutputHelper output)
{
    /// <summary>Every case folder of the labml family, found on disk.</summary>
    public static TheoryData<string> Cases() => TestPaths.Cases("labml");

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesLabml(string name)
    {
        var result = ParityRunner.Run(TestPaths.Fixture("labml", name), name);
        output.WriteLine(result.ToString());
        Assert.True(result.Pass, result.ToString());
        Assert.True(result.MaxRelativeError <= ParityRunner.F64Tolerance, result.ToString());
        Assert.True(result.F32RelativeError <= ParityRunner.F32Tolerance, result.ToString());
    }
}
