namespace TransformerForge.Data;

/// <summary>The built-in synthetic tasks by name.</summary>
public static class SyntheticTasks
{
    public const string Copy = "copy";
    public const string Reverse = "reverse";
    public const string Sort = "sort";
    public const string AssociativeRecall = "associative-recall";
    public const string Addition = "addition";

    public static IReadOnlyList<string> Names { get; } = [Copy, Reverse, Sort, AssociativeRecall, Addition];

    /// <summary>The task called <paramref name="name"/> (case-insensitive) with optional sizes.</summary>
    public static ISyntheticTask Create(string name, SyntheticTaskOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            Copy => new CopyTask(options),
            Reverse => new ReverseTask(options),
            Sort => new SortTask(options),
            AssociativeRecall => new AssociativeRecallTask(options),
            Addition => new AdditionTask(options),
            _ => throw new ArgumentException($"Unknown synthetic task '{name}'; known tasks: {string.Join(", ", Names)}.", nameof(name)),
        };
    }
}
