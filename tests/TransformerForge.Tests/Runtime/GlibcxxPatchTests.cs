using TransformerForge.Runtime;

namespace TransformerForge.Tests.Runtime;

/// <summary>The native patch is made only when safe, and changes exactly one flag.</summary>
public class GlibcxxPatchTests
{
    static string ShimPath()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var nuget = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } n ? n : Path.Combine(home, ".nuget", "packages");
        var local = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        return File.Exists(local) ? local : Path.Combine(nuget, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    [Fact]
    public void ShimNeedsGlibcxx3432OnlyForTheIostreamAnchor()
    {
        var info = ElfVersionInfo.Read(ShimPath());
        var req = info.Requirements.Single(r => r.Name == GlibcxxPatch.Version);
        Assert.Equal(GlibcxxPatch.LibraryFile, req.File);
        Assert.Equal(new[] { GlibcxxPatch.AnchorSymbol }, info.SymbolsWithVersion(req.Index));
    }

    [Fact]
    public void PatchChangesExactlyOneByteAndMakesTheRequirementWeak()
    {
        var bytes = File.ReadAllBytes(ShimPath());
        var info = ElfVersionInfo.Parse(bytes, "shim");
        var req = info.Requirements.Single(r => r.Name == GlibcxxPatch.Version);
        var patched = GlibcxxPatch.Apply(bytes, req);
        Assert.Equal(1, bytes.Zip(patched).Count(p => p.First != p.Second));
        Assert.True(ElfVersionInfo.Parse(patched, "patched").Requirements.Single(r => r.Name == GlibcxxPatch.Version).IsWeak);
        // Against this system's libstdc++, the weakened requirement no longer counts as missing.
        const string systemLibstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
        var missing = GlibcxxPatch.MissingVersions(ElfVersionInfo.Parse(patched, "patched"),
            file => file == GlibcxxPatch.LibraryFile && File.Exists(systemLibstdcxx) ? systemLibstdcxx : null);
        Assert.DoesNotContain(missing, r => r.Name == GlibcxxPatch.Version);
    }

    [Fact]
    public void RefusesWhenAnotherVersionIsMissing()
    {
        var info = ElfVersionInfo.Read(ShimPath());
        var glibcxx = info.Requirements.Single(r => r.Name == GlibcxxPatch.Version);
        var other = info.Requirements.First(r => r.File == "libc.so.6");
        Assert.Null(GlibcxxPatch.WhyUnsafe(info, new[] { glibcxx }));
        var why = GlibcxxPatch.WhyUnsafe(info, new[] { glibcxx, other });
        Assert.NotNull(why);
        Assert.Contains(other.Name, why);
        Assert.Throws<ArgumentException>(() => GlibcxxPatch.Apply(File.ReadAllBytes(ShimPath()), other));
    }

    [Fact]
    public void OnThisSystemOnlyGlibcxx3432IsMissingOrNothing()
    {
        // Debian 12's libstdc++ (GCC 12) lacks exactly GLIBCXX_3.4.32; a newer one lacks nothing.
        TorchRuntime.EnsureLoaded();
        var missing = GlibcxxPatch.MissingVersions(ElfVersionInfo.Read(ShimPath()),
            f => TorchRuntime.LoadedLibraries().FirstOrDefault(p => Path.GetFileName(p).StartsWith(f)));
        Assert.All(missing, r => Assert.Equal(GlibcxxPatch.Version, r.Name));
        Assert.Equal(missing.Count == 1, TorchRuntime.ShimPatched);
    }

    [Fact]
    public void NotAnElfFileIsAClearError()
    {
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionInfo.Parse(new byte[100], "junk.so"));
        Assert.Contains("junk.so", e.Message);
        Assert.Contains("not an ELF", e.Message);
    }
}
