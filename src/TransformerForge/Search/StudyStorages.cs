namespace TransformerForge.Search;

/// <summary>Opens the study storage a <c>--storage</c> value names: a SQLite file path (the default kind). Other
/// backends (a <c>postgresql://</c> URL) plug in here with the same <see cref="IStudyStorage"/> semantics.</summary>
public static class StudyStorages
{
    public static IStudyStorage Open(string storage, bool mustExist = false)
    {
        if (storage.Contains("://", StringComparison.Ordinal))
            throw new SearchException($"--storage: '{storage.Split("://")[0]}://' storages are not supported by this build; give a SQLite file path");
        if (mustExist && !File.Exists(storage)) throw new FileNotFoundException($"study file '{storage}' does not exist", storage);
        return new SqliteStudyStorage(storage);
    }

    /// <summary>How to name a storage in messages (never a connection string's secrets).</summary>
    public static string Describe(IStudyStorage storage) => storage is SqliteStudyStorage s ? $"'{s.Path}'" : "the study storage";
}
