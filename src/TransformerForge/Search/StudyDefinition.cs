using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// Everything that defines a study, fixed when it is created and stored with it: the space (resolved to the data),
/// objectives, algorithm, constraints, hurdles, how trials are evaluated (data, budget, training, bounds) and the seed.
/// Continuing a study reads this back, so a worker needs only the study's name.
/// </summary>
public sealed record StudyDefinition
{
    public required string Name { get; init; }
    public required JsonObject Space { get; init; }
    public required IReadOnlyList<Objective> Objectives { get; init; }
    public required JsonObject Algorithm { get; init; }
    public IReadOnlyList<Constraint> Constraints { get; init; } = [];
    public HurdlePolicy? Hurdles { get; init; }
    /// <summary>How a trial is trained and measured (<see cref="TrialEvaluation"/> settings), opaque to the storage.</summary>
    public required JsonObject Evaluation { get; init; }
    public int Seed { get; init; }
    /// <summary>How many times a trial is started before a worker that keeps dying on it marks it failed.</summary>
    public int MaxAttempts { get; init; } = 3;

    public JsonObject ToJson() => new()
    {
        ["name"] = Name,
        ["space"] = Space.DeepClone(),
        ["objectives"] = new JsonArray(Objectives.Select(o => (JsonNode?)new JsonObject
        {
            ["metric"] = o.Metric, ["direction"] = o.Direction == Direction.Minimize ? "minimize" : "maximize",
        }).ToArray()),
        ["algorithm"] = Algorithm.DeepClone(),
        ["constraints"] = new JsonArray(Constraints.Select(c => (JsonNode?)new JsonObject { ["metric"] = c.Metric, ["max"] = c.Max }).ToArray()),
        ["hurdles"] = Hurdles?.ToJson(),
        ["evaluation"] = Evaluation.DeepClone(),
        ["seed"] = Seed,
        ["max_attempts"] = MaxAttempts,
    };

    public static StudyDefinition FromJson(JsonObject o)
    {
        try
        {
            return new StudyDefinition
            {
                Name = o["name"]!.GetValue<string>(),
                Space = (JsonObject)o["space"]!.DeepClone(),
                Objectives = ((JsonArray)o["objectives"]!).Select(n => new Objective(n!["metric"]!.GetValue<string>(),
                    n["direction"]!.GetValue<string>() == "maximize" ? Direction.Maximize : Direction.Minimize)).ToList(),
                Algorithm = (JsonObject)o["algorithm"]!.DeepClone(),
                Constraints = ((JsonArray?)o["constraints"] ?? []).Select(n => new Constraint(n!["metric"]!.GetValue<string>(), n["max"]!.GetValue<double>())).ToList(),
                Hurdles = o["hurdles"] is JsonObject h ? HurdlePolicy.FromJson(h) : null,
                Evaluation = (JsonObject)o["evaluation"]!.DeepClone(),
                Seed = o["seed"]!.GetValue<int>(),
                MaxAttempts = o["max_attempts"]?.GetValue<int>() ?? 3,
            };
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or InvalidCastException or FormatException)
        {
            throw new InvalidDataException($"the stored study definition is damaged: {e.Message}");
        }
    }

    public string ToJsonString() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = false });

    /// <summary>The settings that differ between this definition and <paramref name="other"/> (top-level keys), for
    /// the error when a command line asks to continue a study with different settings.</summary>
    public IReadOnlyList<string> Differences(StudyDefinition other)
    {
        var a = ToJson();
        var b = other.ToJson();
        return a.Select(p => p.Key).Union(b.Select(p => p.Key)).Where(k => !JsonNode.DeepEquals(a[k], b[k])).ToList();
    }
}

/// <summary>A study as stored: its id, definition and trial budget.</summary>
public sealed record StudyInfo(long Id, StudyDefinition Definition, int MaxTrials, DateTimeOffset CreatedAt)
{
    public string Name => Definition.Name;
}
