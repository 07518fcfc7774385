using TransformerForge.Parity;

namespace TransformerForge.Tests.Parity;

/// <summary>
/// Every x-transformers 0.20 fixture: same weights in, same numbers out (float64 ≤ 1e-9, float32 ≤ 1e-4).
/// The fixtures root is ../shared/fixtures, or $TFORGE_FIXTURES.
/// </summary>
public class XTransformersParityTests
{
    public static TheoryData<string> Cases() => TestPaths.XTransformersCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesPythonOriginal(string name)
    {
        var result = ParityRunner.Run(TestPaths.Fixture("xtransformers", name), name);
        Assert.True(result.Pass, result.ToString());
        Assert.True(result.MaxRelativeError <= ParityRunner.F64Tolerance, result.ToString());
    }

    [Fact]
    public void AllFortyOneCasesArePresent() => Assert.Equal(41, Cases().Count);

    [Fact]
    public void RunnerReportsMismatchAsFailure()
    {
        // Same fixture, wrong reference: a case whose outputs differ must fail, not pass silently.
        var tmp = Directory.CreateTempSubdirectory("tforge-parity-").FullName;
        try
        {
            var src = TestPaths.Fixture("xtransformers", "decoder_base");
            foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(tmp, Path.GetFileName(f)));
            // Swap in another case's reference outputs (same shapes, different numbers).
            File.Copy(TestPaths.Fixture("xtransformers", "rezero", "io.safetensors"), Path.Combine(tmp, "io.safetensors"), overwrite: true);
            var result = ParityRunner.Run(tmp, "tampered");
            Assert.False(result.Pass);
            Assert.Contains("FAIL", result.ToString());
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void UnsupportedOptionFailsWithNotSupported()
    {
        // An op we do not implement (Archai's deprecated flash_mha) fails the case and says so.
        var tmp = Directory.CreateTempSubdirectory("tforge-parity-").FullName;
        try
        {
            var src = TestPaths.Fixture("archai", "sgconv");
            foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(tmp, Path.GetFileName(f)));
            var json = File.ReadAllText(Path.Combine(tmp, "case.json")).Replace("\"sgconv\"", "\"flash_mha\"");
            File.WriteAllText(Path.Combine(tmp, "case.json"), json);
            var result = ParityRunner.Run(tmp, "flash_mha");
            Assert.False(result.Pass);
            Assert.StartsWith("not supported:", result.Note);
            Assert.Contains("flash_mha", result.Note);
        }
        finally { Directory.Delete(tmp, true); }
    }
}
