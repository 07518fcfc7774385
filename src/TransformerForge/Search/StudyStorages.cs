namespace TransformerForge.Search;

/// <summary>
/// Opens the study storage a <c>--storage</c> value names: a SQLite file path (the default, <c>search.db</c>), or a
/// <c>postgresql://</c> URL for workers on many machines. The value can come from elsewhere so that a password never
/// sits on a command line (visible in <c>ps</c> and shell history): <c>env:NAME</c> reads it from an environment
/// variable, <c>file:PATH</c> from a file (its first line), and with no <c>--storage</c> at all
/// <c>$TFORGE_STORAGE</c> is used when set.
/// </summary>
public static class StudyStorages
{
    public const string DefaultPath = "search.db";
    /// <summary>The storage used when none is given.</summary>
    public const string EnvironmentVariable = "TFORGE_STORAGE";

    /// <summary>The storage a value stands for, with <c>env:</c> and <c>file:</c> read (null: $TFORGE_STORAGE, else search.db).</summary>
    public static string Resolve(string? storage)
    {
        if (storage is null)
            return Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } fromEnv ? Resolve(fromEnv) : DefaultPath;
        if (storage.StartsWith("env:", StringComparison.Ordinal))
        {
            var name = storage[4..];
            return Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value.Trim()
                : throw new StudyStorageException($"--storage env:{name}: the environment variable {name} is not set");
        }
        if (storage.StartsWith("file:", StringComparison.Ordinal))
        {
            var path = storage[5..];
            if (!File.Exists(path)) throw new StudyStorageException($"--storage file:{path}: there is no such file");
            var line = File.ReadLines(path).Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.StartsWith('#'));
            return line ?? throw new StudyStorageException($"--storage file:{path}: the file holds no storage (a postgresql:// URL or a study file path)");
        }
        return storage;
    }

    /// <param name="storage">A <c>--storage</c> value (see the class).</param>
    /// <param name="mustExist">A SQLite file must exist already (for reading commands).</param>
    /// <param name="reconnectFor">How long a database storage retries while the database is unreachable.</param>
    /// <param name="log">Told when a database storage loses its database and retries.</param>
    public static IStudyStorage Open(string? storage, bool mustExist = false, TimeSpan? reconnectFor = null, Action<string>? log = null)
    {
        var value = Resolve(storage);
        if (PostgresUrl.IsUrl(value)) return new PostgresStudyStorage(value, reconnectFor, log);
        if (value.Contains("://", StringComparison.Ordinal))
            throw new StudyStorageException($"--storage: '{value.Split("://")[0]}://' storages are not supported; give a SQLite file path or a postgresql:// URL");
        if (mustExist && !File.Exists(value)) throw new FileNotFoundException($"study file '{value}' does not exist", value);
        return new SqliteStudyStorage(value);
    }

    /// <summary>How to name a storage in messages (never a connection string's secrets).</summary>
    public static string Describe(IStudyStorage storage) => storage switch
    {
        SqliteStudyStorage s => $"'{s.Path}'",
        PostgresStudyStorage p => p.Description,
        _ => "the study storage",
    };
}
