using TransformerForge.Parity;
using Xunit.Abstractions;

namespace TransformerForge.Tests.Archai;

/// <summary>
/// Archai's Transformer++ token mixers and MixedAttentionBlock, through the parity runner: same weights in, same
/// numbers out in float64 (relative error ≤ 1e-9) and float32 (≤ 1e-4).
/// </summary>
public class ArchaiParityTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("sep_conv1d")]
    [InlineData("sgconv")]
    [InlineData("sgconv3")]
    [InlineData("local_attn")]
    [InlineData("mha_rotary")]
    [InlineData("mixed_block")]
    public void MatchesArchai(string name)
    {
        var result = ParityRunner.Run(TestPaths.Fixture("archai", name), name);
        output.WriteLine(result.ToString());
        Assert.True(result.Pass, result.ToString());
        Assert.True(result.MaxRelativeError <= ParityRunner.F64Tolerance, result.ToString());
        Assert.True(result.F32RelativeError <= ParityRunner.F32Tolerance, result.ToString());
    }
}
