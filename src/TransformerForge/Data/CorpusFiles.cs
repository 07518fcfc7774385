namespace TransformerForge.Data;

/// <summary>Resolves a corpus path to the text files that make it up, in the order they are concatenated.</summary>
public static class CorpusFiles
{
    /// <summary>
    /// A file is used as is; a folder contributes its top-level <c>*.txt</c> files sorted by name (ordinal, so the
    /// order does not depend on the machine's culture).
    /// </summary>
    public static IReadOnlyList<string> Resolve(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (File.Exists(path)) return [Path.GetFullPath(path)];
        if (!Directory.Exists(path))
            throw new FileNotFoundException($"Corpus path '{path}' does not exist (expected a text file or a folder of .txt files).", path);
        var files = Directory.EnumerateFiles(path, "*.txt", SearchOption.TopDirectoryOnly)
            // EnumerateFiles' pattern also matches e.g. ".txt~" on some platforms; keep exact extensions only.
            .Where(f => string.Equals(Path.GetExtension(f), ".txt", StringComparison.OrdinalIgnoreCase))
            .Select(Path.GetFullPath)
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
            throw new FileNotFoundException($"Corpus folder '{path}' contains no .txt files.", path);
        return files;
    }
}
