using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace TransformerForge.Search;

/// <summary>
/// A trial's life: <c>waiting</c> (queued, e.g. re-queued after its worker died), <c>running</c> (claimed by one
/// worker), then <c>complete</c>, <c>pruned</c> (stopped at a hurdle; its metrics are those at the hurdle) or
/// <c>failed</c> (with the reason). Finished states never change again.
/// </summary>
public enum TrialState { Waiting, Running, Complete, Pruned, Failed }

public static class TrialStates
{
    public static string Name(this TrialState s) => s.ToString().ToLowerInvariant();

    public static TrialState Parse(string s) => Enum.TryParse<TrialState>(s, ignoreCase: true, out var v) ? v
        : throw new InvalidDataException($"unknown trial state '{s}'");

    public static bool IsFinished(this TrialState s) => s is TrialState.Complete or TrialState.Pruned or TrialState.Failed;
}

/// <summary>A Primer hurdle written into a trial when it is proposed: at this fraction of the budget the trial measures
/// its primary metric (so later trials have values to set thresholds from) and, when there is a
/// <see cref="Threshold"/> yet, stops there (pruned) if the metric is worse.</summary>
public sealed record Hurdle(double At, double? Threshold);

/// <summary>The primary metric measured part-way (at a hurdle, or at a successive-halving rung).</summary>
public sealed record IntermediateValue(double At, int Step, double Seconds, double Value);

/// <summary>
/// What a trial is to do, fixed when it is proposed (so a re-run after a crash does the same): where it came from,
/// its training budget as a fraction of the study's (successive halving), the hurdles, and the training seed.
/// </summary>
public sealed record TrialPlan
{
    /// <summary><c>random</c>, <c>mutation</c>, <c>crossover</c> or <c>promotion</c>.</summary>
    public string Origin { get; init; } = "random";
    /// <summary>Trial numbers of the parents (mutation, crossover, promotion).</summary>
    public IReadOnlyList<int> Parents { get; init; } = [];
    /// <summary>Successive-halving rung (0 for other algorithms).</summary>
    public int Rung { get; init; }
    /// <summary>Fraction of the study's training budget this trial gets (1 unless successive halving says less).</summary>
    public double BudgetFraction { get; init; } = 1;
    public IReadOnlyList<Hurdle> Hurdles { get; init; } = [];
    public int Seed { get; init; }

    public string Describe() => Origin switch
    {
        "random" => "random",
        "promotion" => $"promoted #{Parents.FirstOrDefault()} to rung {Rung}",
        _ => $"{Origin} of {string.Join(" × ", Parents.Select(p => $"#{p}"))}",
    };
}

/// <summary>One row of a study: a candidate, its plan, its state and, once finished, its metrics.</summary>
public sealed record TrialRecord
{
    public long Id { get; init; }
    public int Number { get; init; }
    public TrialState State { get; init; }
    public required JsonObject Spec { get; init; }
    public required string Key { get; init; }
    public required JsonObject Genome { get; init; }
    public required TrialPlan Plan { get; init; }
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
    public IReadOnlyList<IntermediateValue> Intermediate { get; init; } = [];
    public string? Error { get; init; }
    /// <summary>The worker holding (or last holding) the trial.</summary>
    public string? Worker { get; init; }
    /// <summary>How many times a worker has started it (more than 1 after a re-queue).</summary>
    public int Attempt { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? HeartbeatAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    /// <summary>Seconds the finishing attempt took.</summary>
    public double? Seconds { get; init; }

    [JsonIgnore] public bool IsFinished => State.IsFinished();

    /// <summary>The metric's value, or null when the trial has none (not finished, failed, or not measured).</summary>
    public double? Metric(string name) => Metrics.TryGetValue(name, out var v) ? v : null;
}
