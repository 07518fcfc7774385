namespace TransformerForge.Tests;

/// <summary>Locates the repository root and the shared parity fixtures from the test's output folder.</summary>
internal static class TestPaths
{
    public const string FixturesEnv = "TFORGE_FIXTURES";

    /// <summary>The nearest ancestor of the test binaries that holds TransformerForge.slnx.</summary>
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "TransformerForge.slnx")))
                    return dir.FullName;
            throw new DirectoryNotFoundException($"No TransformerForge.slnx above {AppContext.BaseDirectory}.");
        }
    }

    /// <summary>
    /// The shared fixtures folder: $TFORGE_FIXTURES if set, else ../shared/fixtures from the repo root. A git
    /// worktree sits one level deeper than the main checkout, so further ancestors are tried too.
    /// </summary>
    public static string Fixtures
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable(FixturesEnv);
            if (!string.IsNullOrEmpty(fromEnv))
                return Directory.Exists(fromEnv)
                    ? fromEnv
                    : throw new DirectoryNotFoundException($"{FixturesEnv}={fromEnv} is not a directory.");

            // Above this checkout; else, for a fresh clone made elsewhere (e.g. under /tmp), above the local
            // repository it was cloned from.
            foreach (var root in new[] { RepoRoot, LocalOrigin() })
                for (var dir = root is null ? null : Directory.GetParent(root); dir is not null; dir = dir.Parent)
                {
                    var candidate = Path.Combine(dir.FullName, "shared", "fixtures");
                    if (Directory.Exists(candidate)) return candidate;
                }
            throw new DirectoryNotFoundException(
                $"No shared/fixtures above {RepoRoot}; set {FixturesEnv} to the fixtures directory.");
        }
    }

    /// <summary>The origin of this clone when it is a folder on this machine (git's <c>remote.origin.url</c>), else null.</summary>
    static string? LocalOrigin()
    {
        var config = Path.Combine(RepoRoot, ".git", "config");
        if (!File.Exists(config)) return null;
        bool inOrigin = false;
        foreach (var raw in File.ReadLines(config))
        {
            var line = raw.Trim();
            if (line.StartsWith('[')) inOrigin = line == "[remote \"origin\"]";
            else if (inOrigin && line.StartsWith("url", StringComparison.Ordinal) && line.IndexOf('=') is var eq and > 0)
            {
                var url = line[(eq + 1)..].Trim();
                if (url.StartsWith("file://", StringComparison.Ordinal)) url = url["file://".Length..];
                return Path.IsPathRooted(url) && Directory.Exists(url) ? Path.GetFullPath(url) : null;
            }
        }
        return null;
    }

    public static string Fixture(params string[] parts) => Path.Combine([Fixtures, .. parts]);

    /// <summary>Reference cases kept in this repository (tests/TransformerForge.Tests/Fixtures), made by scripts/fixtures.</summary>
    public static string RepoFixture(params string[] parts) => Path.Combine([RepoRoot, "tests", "TransformerForge.Tests", "Fixtures", .. parts]);

    /// <summary>The names of the x-transformers fixture cases, for theories that run once per case.</summary>
    public static TheoryData<string> XTransformersCases() => Cases("xtransformers");

    /// <summary>The case folders of one fixture family, as found on disk (every folder holding a case.json).</summary>
    public static TheoryData<string> Cases(string family)
    {
        var data = new TheoryData<string>();
        foreach (var dir in TransformerForge.Parity.ParityRunner.FindCases(Fixture(family))) data.Add(Path.GetRelativePath(Fixture(family), dir));
        return data;
    }
}
