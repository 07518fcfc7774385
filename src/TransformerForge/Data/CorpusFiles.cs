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

    /// <summary>
    /// SHA-256 (hex) of a corpus's content: its bytes, and for a folder each file's name and length in concatenation
    /// order. No paths, so a corpus moved or copied elsewhere keeps its hash (how a resumed run recognises it).
    /// </summary>
    public static string ContentSha256(string path)
    {
        bool folder = Directory.Exists(path);
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        foreach (var file in Resolve(path))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            if (folder) hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"{Path.GetFileName(file)}\0{stream.Length}\0"));
            int read;
            while ((read = stream.Read(buffer)) > 0) hash.AppendData(buffer, 0, read);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
