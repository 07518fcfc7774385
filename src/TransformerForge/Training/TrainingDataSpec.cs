using System.Text.Json;
using System.Text.Json.Serialization;
using TransformerForge.Data;

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
    /// <summary>Corpus file or folder (text).</summary>
    public string? Path { get; init; }
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

    public static TrainingDataSpec ForText(string path, string tokenizer, int seqLen) =>
        new() { Kind = TextKind, Path = System.IO.Path.GetFullPath(path), Tokenizer = tokenizer, SeqLen = seqLen };

    public static TrainingDataSpec ForTask(string task, SyntheticTaskOptions? options = null) => new()
    {
        Kind = TaskKind, Task = task, Length = options?.Length, Symbols = options?.Symbols, Keys = options?.Keys, ReverseAnswer = options?.ReverseAnswer,
    };

    [JsonIgnore]
    public SyntheticTaskOptions TaskOptions => new(Length, Symbols, Keys, ReverseAnswer);

    /// <summary>
    /// Opens the data. A text corpus uses the tokenizer saved in <paramref name="tokenizerDirectory"/> when given (a
    /// checkpoint's chars vocabulary must not be rebuilt from a corpus that may have changed), else builds one.
    /// </summary>
    public ITrainingData Open(string? tokenizerDirectory = null) => Kind switch
    {
        TextKind => TextWindowData.Open(
            Path ?? throw new InvalidDataException("text data needs a path"),
            tokenizerDirectory is not null ? Tokenizers.Load(tokenizerDirectory)
                : Tokenizers.CreateFromCorpus(Tokenizer ?? throw new InvalidDataException("text data needs a tokenizer"), Path),
            SeqLen ?? throw new InvalidDataException("text data needs seq_len"), this),
        TaskKind => new SyntheticTaskData(SyntheticTasks.Create(Task ?? throw new InvalidDataException("task data needs a task name"), TaskOptions), this),
        _ => throw new InvalidDataException($"unknown data kind '{Kind}' (expected '{TextKind}' or '{TaskKind}')"),
    };

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public void Save(string directory) => File.WriteAllText(System.IO.Path.Combine(directory, FileName), ToJson());

    public static TrainingDataSpec Load(string directory)
    {
        var file = System.IO.Path.Combine(directory, FileName);
        if (!File.Exists(file)) throw new FileNotFoundException($"'{directory}' has no {FileName} describing its training data", file);
        try
        {
            return JsonSerializer.Deserialize<TrainingDataSpec>(File.ReadAllText(file), Json)
                ?? throw new InvalidDataException($"{file} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file} is not a valid data description: {e.Message}", e);
        }
    }
}
