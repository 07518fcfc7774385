using TransformerForge.Parity;

namespace TransformerForge.Tests.Parity;

/// <summary>
/// x-transformers 1.40: the 19 shared fixtures (its modern options) and the reference cases kept in this repository
/// for the options those do not cover (made by x-transformers 1.40.11 itself: scripts/fixtures/xtransformers_140_extra.py).
/// Same weights in, same numbers out: float64 ≤ 1e-9, float32 ≤ 1e-4.
/// </summary>
public class XTransformers140ParityTests
{
    public const string Family = "xtransformers-1.40";
    public const string ReferenceFamily = "xtransformers-1.40-extra";

    public static TheoryData<string> Cases() => TestPaths.Cases(Family);

    public static TheoryData<string> ReferenceCases()
    {
        var data = new TheoryData<string>();
        foreach (var dir in ParityRunner.FindCases(TestPaths.RepoFixture(ReferenceFamily))) data.Add(Path.GetFileName(dir));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesPythonOriginal(string name) => AssertPasses(TestPaths.Fixture(Family, name), name);

    [Theory]
    [MemberData(nameof(ReferenceCases))]
    public void MatchesReferenceCase(string name) => AssertPasses(TestPaths.RepoFixture(ReferenceFamily, name), name);

    static void AssertPasses(string dir, string name)
    {
        var result = ParityRunner.Run(dir, name);
        Assert.True(result.Pass, result.ToString());
        // Every case has a float64 reference but dynamic_pos_bias (1.40 itself cannot run that option in float64).
        if (name != "m_dynamic_pos_bias") Assert.True(result.MaxRelativeError <= ParityRunner.F64Tolerance, result.ToString());
        Assert.True(result.F32RelativeError <= ParityRunner.F32Tolerance, result.ToString());
    }

    [Fact]
    public void AllNineteenCasesArePresent() => Assert.Equal(19, Cases().Count);

    [Fact]
    public void ACaseReadAsVersion020Fails()
    {
        // Without the version its source names, a 1.40 fixture is a 0.20 configuration: its options are unknown there.
        var tmp = Directory.CreateTempSubdirectory("tforge-parity-").FullName;
        try
        {
            var src = TestPaths.Fixture(Family, "m_gqa_kv_heads");
            foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(tmp, Path.GetFileName(f)));
            var json = File.ReadAllText(Path.Combine(tmp, "case.json")).Replace("x-transformers 1.40.11", "x-transformers 0.20.7");
            File.WriteAllText(Path.Combine(tmp, "case.json"), json);
            var result = ParityRunner.Run(tmp, "as-0.20");
            Assert.False(result.Pass);
            Assert.Contains("attn_kv_heads", result.Note);
            Assert.Contains("1.40", result.Note);
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void OnlyFloat32ReferenceIsComparedAlone()
    {
        // m_dynamic_pos_bias has no f64.* outputs: the float32 comparison decides, and the note says what was missing.
        var result = ParityRunner.Run(TestPaths.Fixture(Family, "m_dynamic_pos_bias"), "m_dynamic_pos_bias");
        Assert.True(result.Pass, result.ToString());
        Assert.True(double.IsNaN(result.MaxRelativeError));
        Assert.Contains("no f64 reference", result.Note);
    }
}
