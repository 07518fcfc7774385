using System.Text.Json;
using System.Text.Json.Serialization;
using TransformerForge.Data;
using TransformerForge.IO;

namespace TransformerForge.Training;

/// <summary>
/// A serializable description of a run's data (<c>data.json</c> in a checkpoint): a text corpus with a tokenizer and
/// window length, or a synthetic task with its sizes. <see cref="Open"/> rebuilds the <see cref="ITrainingData"/>.
/// </summary>
public sealed record TrainingDataSpec
{
    public const string FileName = "data.json";
    public const string TextKind = "text";
    public const string TaskKind = "task";

    /// <summary><c>text</c> or <c>task</c>.</summary>
    public string Kind { get; init; } = TextKind;
    /// <summary>Corpus file or folder (text), as an absolute path.</summary>
    public string? Path { get; init; }
    /// <summary>The corpus path relative to the checkpoint directory (written on save): found again when run and corpus move together.</summary>
    public string? RelativePath { get; init; }
    /// <summary>SHA-256 of the corpus content (<see cref="CorpusFiles.ContentSha256"/>): a moved corpus is accepted when it matches.</summary>
    public string? ContentSha256 { get; init; }
    /// <summary>Tokenizer kind (text).</summary>
    public string? Tokenizer { get; init; }
    /// <summary>Tokens per model input (text).</summary>
    public int? SeqLen { get; init; }
    /// <summary>Task name (task).</summary>
    public string? Task { get; init; }
    public int? Length { get; init; }
    public int? Symbols { get; init; }
    public int? Keys { get; init; }
    public bool? ReverseAnswer { get; init; }

    public static TrainingDataSpec ForText(string path, string tokenizer, int seqLen, string? contentSha256 = null) =>
        new() { Kind = TextKind, Path = System.IO.Path.GetFullPath(path), Tokenizer = tokenizer, SeqLen = seqLen, ContentSha256 = contentSha256 };

    public static TrainingDataSpec ForTask(string task, SyntheticTaskOptions? options = null) => new()
    {
        Kind = TaskKind, Task = task, Length = options?.Length, Symbols = options?.Symbols, Keys = options?.Keys, ReverseAnswer = options?.ReverseAnswer,
    };

    [JsonIgnore]
    public SyntheticTaskOptions TaskOptions => new(Length, Symbols, Keys, ReverseAnswer);

    /// <summary>
    /// Opens the data. A text corpus uses the tokenizer saved in <paramref name="tokenizerDirectory"/> when given (a
    /// checkpoint's chars vocabulary must not be rebuilt from a corpus that may have changed), else builds one. A corpus
    /// no longer at <see cref="Path"/> is looked for at <see cref="RelativePath"/> from <paramref name="checkpointDirectory"/>.
    /// </summary>
    public ITrainingData Open(string? tokenizerDirectory = null, string? checkpointDirectory = null)
    {
        switch (Kind)
        {
            case TextKind:
            {
                var spec = Locate(checkpointDirectory);
                var path = spec.Path!;
                var tokenizer = tokenizerDirectory is not null ? Tokenizers.Load(tokenizerDirectory)
                    : Tokenizers.CreateFromCorpus(Tokenizer ?? throw new InvalidDataException("text data needs a tokenizer"), path);
                var data = TextWindowData.Open(path, tokenizer, SeqLen ?? throw new InvalidDataException("text data needs seq_len"), spec);
                if (spec.ContentSha256 is { } want && data.Dataset.ContentSha256 != want)
                {
                    data.Dispose();
                    throw new InvalidDataException($"the corpus at '{path}' has changed since the run started (content SHA-256 {data.Dataset.ContentSha256}, expected {want})");
                }
                return data;
            }
            case TaskKind:
                return new SyntheticTaskData(SyntheticTasks.Create(Task ?? throw new InvalidDataException("task data needs a task name"), TaskOptions), this);
            default:
                throw new InvalidDataException($"unknown data kind '{Kind}' (expected '{TextKind}' or '{TaskKind}')");
        }
    }

    /// <summary>This spec with its corpus where it is now: at <see cref="Path"/>, else at <see cref="RelativePath"/> from the checkpoint.</summary>
    TrainingDataSpec Locate(string? checkpointDirectory)
    {
        var path = Path ?? throw new InvalidDataException("text data needs a path");
        if (File.Exists(path) || Directory.Exists(path)) return this;
        if (checkpointDirectory is not null && RelativePath is { } relative)
        {
            var moved = System.IO.Path.GetFullPath(System.IO.Path.Combine(checkpointDirectory, relative));
            if (File.Exists(moved) || Directory.Exists(moved)) return this with { Path = moved };
        }
        throw new FileNotFoundException($"the corpus '{path}' is gone" + (RelativePath is null ? "" : $" (nor at '{RelativePath}' from the checkpoint)") +
            "; give its new location with --data (its content must be the same)", path);
    }

    /// <summary>
    /// This spec with the corpus at <paramref name="path"/> instead: accepted only when its content hash equals the
    /// one recorded (the same corpus, moved), since a different corpus would silently change the run.
    /// </summary>
    public TrainingDataSpec WithMovedCorpus(string path)
    {
        if (Kind != TextKind) throw new ArgumentException("a synthetic task has no corpus to move");
        if (ContentSha256 is null)
            throw new ArgumentException("this checkpoint records no content hash of its corpus, so a moved corpus cannot be verified");
        var hash = CorpusFiles.ContentSha256(path);
        if (hash != ContentSha256)
            throw new ArgumentException($"'{path}' is not the corpus this run was trained on (content SHA-256 {hash}, the checkpoint's {ContentSha256})");
        return this with { Path = System.IO.Path.GetFullPath(path) };
    }

    /// <summary>
    /// What differs between the data a run was saved with and <paramref name="other"/>, in words (empty when they are
    /// the same data: the same task and sizes, or the same corpus content, tokenizer and window wherever the corpus lies).
    /// </summary>
    public IReadOnlyList<string> Differences(TrainingDataSpec other)
    {
        var d = new List<string>();
        void Compare<T>(string name, T a, T b)
        {
            if (!EqualityComparer<T>.Default.Equals(a, b)) d.Add($"{name} {Show(a)} → {Show(b)}");
        }
        Compare("data kind", Kind, other.Kind);
        Compare("tokenizer", Tokenizer, other.Tokenizer);
        Compare("seq_len", SeqLen, other.SeqLen);
        Compare("task", Task, other.Task);
        Compare("task length", Length, other.Length);
        Compare("task symbols", Symbols, other.Symbols);
        Compare("task keys", Keys, other.Keys);
        Compare("reverse_answer", ReverseAnswer, other.ReverseAnswer);
        if (Kind == TextKind && other.Kind == TextKind)
        {
            if (ContentSha256 is not null && other.ContentSha256 is not null) Compare("corpus content (SHA-256)", ContentSha256, other.ContentSha256);
            else Compare("corpus", Path, other.Path);
        }
        return d;
    }

    static string Show<T>(T value) => value is null ? "none" : $"'{value}'";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Writes <c>data.json</c> into <paramref name="directory"/>, with the corpus path also relative to it.</summary>
    public void Save(string directory)
    {
        var spec = Kind == TextKind && Path is not null
            ? this with { RelativePath = System.IO.Path.GetRelativePath(System.IO.Path.GetFullPath(directory), Path) } : this;
        File.WriteAllText(System.IO.Path.Combine(directory, FileName), spec.ToJson());
    }

    public static TrainingDataSpec Load(string directory)
    {
        var file = System.IO.Path.Combine(directory, FileName);
        if (!File.Exists(file)) throw new FileNotFoundException($"'{directory}' has no {FileName} describing its training data", file);
        try
        {
            return StrictJson.Deserialize<TrainingDataSpec>(File.ReadAllBytes(file), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file} is not a valid data description: {e.Message}", e);
        }
    }
}
