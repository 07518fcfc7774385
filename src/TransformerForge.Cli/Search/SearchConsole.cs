using System.Globalization;
using TransformerForge.Search;

namespace TransformerForge.Cli.Search;

/// <summary>
/// Prints a search as it goes: a line per finished trial with its metrics, where it came from, the best so far and
/// the study's progress with an ETA (from this session's pace); training progress of each trial with --verbose.
/// </summary>
public sealed class SearchConsole(StudyInfo study, bool verbose) : ISearchObserver
{
    readonly DateTime _started = DateTime.UtcNow;
    int _finishedThisSession;
    int _finishedBefore;

    public void Start(IReadOnlyList<TrialRecord> trials, string storage)
    {
        var d = study.Definition;
        _finishedBefore = trials.Count(t => t.IsFinished);
        Console.WriteLine($"study '{study.Name}' in {storage}: {d.Algorithm["name"]} over a {d.Space["space"]} space, " +
                          $"objectives {string.Join(", ", d.Objectives)}{(d.Constraints.Count > 0 ? $", constraints {string.Join(", ", d.Constraints)}" : "")}");
        Console.WriteLine(_finishedBefore > 0
            ? $"continuing: {_finishedBefore} of {study.MaxTrials} trials finished{(trials.Any(t => !t.IsFinished) ? $", {trials.Count(t => !t.IsFinished)} to re-run or running elsewhere" : "")}"
            : $"starting: {study.MaxTrials} trials");
    }

    public void OnTrialStarted(TrialRecord trial, bool isNew)
    {
        if (!isNew) Console.WriteLine($"trial {trial.Number}: re-running (attempt {trial.Attempt}; {trial.Error ?? "re-queued"})");
        else if (verbose) Console.WriteLine($"trial {trial.Number}: {trial.Plan.Describe()}");
    }

    public void OnTrialProgress(TrialRecord trial, string line)
    {
        if (verbose) Console.WriteLine($"  trial {trial.Number}: {line}");
    }

    public void OnTrialFinished(TrialRecord trial, TrialResult result, bool accepted, IReadOnlyList<TrialRecord> trials)
    {
        _finishedThisSession++;
        var objectives = study.Definition.Objectives;
        var what = result.State == TrialState.Failed ? $"failed: {result.Error}" : $"{result.State.Name(),-8} {Describe(result.Metrics, objectives)}";
        var best = Pareto.Best(trials, objectives[0]);
        int done = trials.Count(t => t.IsFinished);
        double perTrial = (DateTime.UtcNow - _started).TotalSeconds / _finishedThisSession;
        var eta = TimeSpan.FromSeconds(perTrial * Math.Max(0, study.MaxTrials - done));
        var bestText = best is null ? "no complete trial yet" : $"best #{best.Number} {objectives[0].Metric} {Number(best.Metric(objectives[0].Metric)!.Value)}";
        Console.WriteLine($"trial {trial.Number,3} {what} ({result.Seconds:0.0} s, {trial.Plan.Describe()}){(accepted ? "" : " [refused: finished elsewhere]")} | " +
                          $"{bestText} | {done}/{study.MaxTrials} done, ETA {Time(eta)}");
    }

    public void OnWaiting(string reason)
    {
        if (verbose) Console.WriteLine($"waiting: {reason}");
    }

    public void Finish(string why, IReadOnlyList<TrialRecord> trials)
    {
        var objectives = study.Definition.Objectives;
        Console.WriteLine($"search stopped: {why}");
        Console.WriteLine($"trials: {trials.Count(t => t.State == TrialState.Complete)} complete, {trials.Count(t => t.State == TrialState.Pruned)} pruned, " +
                          $"{trials.Count(t => t.State == TrialState.Failed)} failed, {trials.Count(t => !t.IsFinished)} unfinished");
        if (Pareto.Best(trials, objectives[0]) is { } best)
            Console.WriteLine($"best: trial {best.Number}, {Describe(best.Metrics, objectives)}");
        if (objectives.Count > 1)
            Console.WriteLine($"Pareto front: trials {string.Join(", ", Pareto.Front(trials, objectives).Select(t => t.Number))}");
        Console.WriteLine($"see: tforge search show --study {study.Name}; export: tforge search export --study {study.Name} --out DIR");
    }

    /// <summary>The objectives first, then params and FLOPs.</summary>
    public static string Describe(IReadOnlyDictionary<string, double> metrics, IReadOnlyList<Objective> objectives)
    {
        var names = objectives.Select(o => o.Metric).Concat([Metrics.Params, Metrics.FlopsPerToken]).Distinct();
        return string.Join("  ", names.Where(metrics.ContainsKey).Select(n => $"{n} {Number(metrics[n])}"));
    }

    public static string Number(double v) => Math.Abs(v) switch
    {
        >= 1e9 => (v / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "G",
        >= 1e6 => (v / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1e4 => (v / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "k",
        _ => v.ToString("0.####", CultureInfo.InvariantCulture),
    };

    static string Time(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : t.TotalMinutes >= 1 ? $"{t.Minutes}m{t.Seconds:00}s" : $"{t.Seconds}s";
}
