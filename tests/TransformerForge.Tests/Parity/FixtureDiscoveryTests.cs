using TransformerForge.Parity;

namespace TransformerForge.Tests.Parity;

/// <summary>No fixture folder is skipped silently: every family is run or pending, every case folder is a case.</summary>
public class FixtureDiscoveryTests
{
    static IEnumerable<string> FamilyFolders() =>
        Directory.EnumerateDirectories(TestPaths.Fixtures).Select(Path.GetFileName).OfType<string>().OrderBy(f => f, StringComparer.Ordinal);

    [Fact]
    public void EveryFamilyFolderIsRunOrPending()
    {
        var unknown = FamilyFolders()
            .Where(f => !FixtureFamilies.Run.ContainsKey(f) && !FixtureFamilies.Pending.ContainsKey(f))
            .ToList();
        Assert.True(unknown.Count == 0,
            $"fixture folders that no parity test runs: {string.Join(", ", unknown)} (under {TestPaths.Fixtures}); " +
            "add each to FixtureFamilies.Run with a parity theory, or to FixtureFamilies.Pending with the reason");
        var missing = FixtureFamilies.Run.Keys.Concat(FixtureFamilies.Pending.Keys.Select(k => k.Split('/')[0]))
            .Where(f => !Directory.Exists(TestPaths.Fixture(f))).ToList();
        Assert.True(missing.Count == 0, $"families listed but not on disk: {string.Join(", ", missing)}");
    }

    [Fact]
    public void EveryRepositoryFamilyIsRun()
    {
        // Reference cases kept in this repository count for option coverage only while a theory runs them.
        var folders = Directory.EnumerateDirectories(TestPaths.RepoFixture()).Select(Path.GetFileName).OfType<string>().ToList();
        Assert.Equal(folders.Order(StringComparer.Ordinal), FixtureFamilies.RepoRun.Keys.Order(StringComparer.Ordinal));
        Assert.All(FixtureFamilies.RepoRun.Keys, f => Assert.NotEmpty(ParityRunner.FindCases(TestPaths.RepoFixture(f))));
    }

    [Fact]
    public void EveryCaseFolderHoldsACase()
    {
        // FindCases looks for case.json; a case folder without one would otherwise vanish from the theories.
        var bad = FamilyFolders()
            .SelectMany(f => Directory.EnumerateDirectories(TestPaths.Fixture(f)))
            .Where(d => !File.Exists(Path.Combine(d, "case.json")))
            .Select(d => Path.GetRelativePath(TestPaths.Fixtures, d)).ToList();
        Assert.True(bad.Count == 0, $"fixture folders without a case.json: {string.Join(", ", bad)}");
    }

    [Theory]
    [MemberData(nameof(FamiliesRun))]
    public void EveryRunFamilyHasCases(string family) => Assert.NotEmpty(TestPaths.Cases(family));

    public static TheoryData<string> FamiliesRun() => new(FixtureFamilies.Run.Keys);

    static IEnumerable<string> PendingCases()
    {
        foreach (var entry in FixtureFamilies.Pending.Keys)
        {
            if (entry.Contains('/')) { yield return entry; continue; }
            foreach (var c in TestPaths.Cases(entry)) yield return $"{entry}/{c}";
        }
    }

    /// <summary>
    /// A pending case still fails; once it passes, its pending line must go (so it is then checked for real).
    /// One fact over all pending cases rather than a theory: an empty pending list is the goal, and xUnit fails a theory without data.
    /// </summary>
    [Fact]
    public void PendingCasesStillFail()
    {
        var passing = PendingCases().Where(familyCase => ParityRunner.Run(TestPaths.Fixture(familyCase.Split('/')), familyCase).Pass)
            .Select(familyCase => $"{familyCase} (reason was: " +
                $"{FixtureFamilies.Pending.GetValueOrDefault(familyCase) ?? FixtureFamilies.Pending[familyCase.Split('/')[0]]})")
            .ToList();
        Assert.True(passing.Count == 0, $"pending cases that pass now: delete their lines from FixtureFamilies.Pending: {string.Join(", ", passing)}");
    }
}
