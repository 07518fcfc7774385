using System.Security.Cryptography;

namespace TransformerForge.Runtime;

/// <summary>
/// The one patch TransformerForge will make to a native library, and the checks that make it safe.
/// <para>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> was linked with GCC 13, whose <c>&lt;iostream&gt;</c> references
/// <c>std::ios_base_library_init()</c> (version <c>GLIBCXX_3.4.32</c>) purely as a link-time anchor: nothing calls it.
/// On a libstdc++ older than GCC 13 (Debian 12 has 3.4.30) the dynamic loader refuses the library because that
/// version is missing. Marking that single version requirement weak (<c>VER_FLG_WEAK</c> in its <c>Vernaux</c> entry)
/// turns the refusal into a warning; the symbol stays unresolved, which is harmless because it is never called.
/// </para>
/// We patch only when (1) that requirement is the only one the running process cannot satisfy, and (2) the only
/// dynamic symbol bound to it is the anchor. Anything else is a real incompatibility and is reported, not patched.
/// </summary>
public static class GlibcxxPatch
{
    public const string LibraryFile = "libstdc++.so.6";
    public const string Version = "GLIBCXX_3.4.32";
    public const string AnchorSymbol = "_ZSt21ios_base_library_initv";

    /// <summary>Requirements of <paramref name="lib"/> that the given dependency libraries do not define.</summary>
    /// <param name="resolve">Maps a needed file name (e.g. <c>libstdc++.so.6</c>) to the path the process uses, or null if unknown.</param>
    public static List<ElfVersionInfo.Requirement> MissingVersions(ElfVersionInfo lib, Func<string, string?> resolve)
    {
        var missing = new List<ElfVersionInfo.Requirement>();
        var cache = new Dictionary<string, ElfVersionInfo?>();
        foreach (var req in lib.Requirements)
        {
            if (req.IsWeak) continue;
            if (!cache.TryGetValue(req.File, out var dep))
            {
                var path = resolve(req.File);
                cache[req.File] = dep = path is null ? null : ElfVersionInfo.Read(path);
            }
            if (dep is not null && !dep.DefinedVersions.Contains(req.Name)) missing.Add(req);
        }
        return missing;
    }

    /// <summary>Why the patch may not be applied, or null when it is safe.</summary>
    public static string? WhyUnsafe(ElfVersionInfo lib, IReadOnlyList<ElfVersionInfo.Requirement> missing)
    {
        var others = missing.Where(r => r.File != LibraryFile || r.Name != Version).ToList();
        if (others.Count > 0)
            return "it also needs versions this system lacks: " + string.Join(", ", others.Select(r => $"{r.Name} ({r.File})"));
        var target = missing.SingleOrDefault();
        if (target is null) return "nothing is missing";
        var bound = lib.SymbolsWithVersion(target.Index);
        if (bound.Any(s => s != AnchorSymbol))
            return $"symbols other than the link-time anchor need {Version}: {string.Join(", ", bound)}";
        return null;
    }

    /// <summary>A copy of <paramref name="original"/> with only the <see cref="Version"/> requirement marked weak.</summary>
    public static byte[] Apply(byte[] original, ElfVersionInfo.Requirement target)
    {
        if (target.Name != Version || target.File != LibraryFile)
            throw new ArgumentException($"refusing to weaken {target.Name} of {target.File}");
        var patched = (byte[])original.Clone();
        ushort flags = (ushort)(target.Flags | ElfVersionInfo.VerFlgWeak);
        patched[target.FlagsOffset] = (byte)flags;
        patched[target.FlagsOffset + 1] = (byte)(flags >> 8);

        // Verify: exactly the flags field differs, and re-reading the copy shows that one requirement weak.
        int diffs = 0;
        for (int i = 0; i < original.Length; i++) if (original[i] != patched[i]) diffs++;
        var check = ElfVersionInfo.Parse(patched, "patched copy");
        var req = check.Requirements.Single(r => r.File == LibraryFile && r.Name == Version);
        if (diffs != 1 || !req.IsWeak || check.Requirements.Count(r => r.IsWeak) != CountWeak(original) + 1)
            throw new InvalidOperationException("the patched copy does not differ from the original in exactly the intended flag");
        return patched;
    }

    static int CountWeak(byte[] original) => ElfVersionInfo.Parse(original, "original").Requirements.Count(r => r.IsWeak);

    public static string Sha256(byte[] data) => Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant();
}
