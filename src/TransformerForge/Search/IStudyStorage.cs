using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// Where studies live, and the only place workers coordinate: every piece of state is here, workers are stateless.
/// Implementations give these guarantees (<see cref="SqliteStudyStorage"/> for one machine, <see cref="PostgresStudyStorage"/>
/// for many; both pass the same contract tests):
/// <list type="bullet">
/// <item><see cref="OpenOrCreate"/> is safe when several workers start at once: exactly one study of a name exists.</item>
/// <item><see cref="Claim"/> is exact: a trial is held by one (worker, attempt) at a time. It first re-queues running
/// trials whose worker is gone (stopped beating for the grace period, or known dead) — as <c>waiting</c>, or as
/// <c>failed</c> once they used up their attempts — then hands out the waiting trial with the lowest number, and only
/// when there is none asks the algorithm for a new one and inserts it with the next number (a concurrent insert of
/// that number makes it retry with the fresh history).</item>
/// <item><see cref="Finish"/> records a result once: only the (worker, attempt) holding the trial, or anyone while it
/// waits re-queued, can finish it; a late or duplicate result is refused, so no trial is counted twice, and a finished
/// trial never changes. A committed finish survives any crash of the process.</item>
/// </list>
/// </summary>
public interface IStudyStorage : IDisposable
{
    /// <summary>Creates the study, or returns the one of that name as stored (the caller compares definitions).</summary>
    StudyInfo OpenOrCreate(StudyDefinition definition, int maxTrials);

    StudyInfo? Find(string name);

    IReadOnlyList<StudyInfo> List();

    /// <summary>Changes how many trials the study runs in all (to continue a finished study further).</summary>
    void SetMaxTrials(long studyId, int maxTrials);

    /// <summary>All trials of the study, by number.</summary>
    IReadOnlyList<TrialRecord> Trials(long studyId);

    /// <summary>Gives this worker a trial to run (see the interface's guarantees).</summary>
    /// <param name="propose">Asked for trial number N given the trials so far; null means "nothing until running trials finish".</param>
    ClaimResult Claim(long studyId, string worker, Func<IReadOnlyList<TrialRecord>, int, NewTrial?> propose, ClaimPolicy policy);

    /// <summary>Marks the trial alive; false when this (worker, attempt) no longer holds it.</summary>
    bool Heartbeat(long trialId, string worker, int attempt);

    /// <summary>Gives a held trial back untouched (the worker is stopping): it waits for the next claim, and this
    /// attempt does not count towards the limit. False when this (worker, attempt) no longer holds it.</summary>
    bool Release(long trialId, string worker, int attempt);

    /// <summary>Records the result; false when refused (the trial was finished already, or is held by another attempt).</summary>
    bool Finish(long trialId, string worker, int attempt, TrialResult result);

    /// <summary>Requests sent to a database server so far (each one network round trip); 0 for a local file.</summary>
    long RoundTrips => 0;
}

/// <summary>When a running trial counts as abandoned: no heartbeat for <see cref="Grace"/>, or its worker is known to
/// be gone (<see cref="WorkerIsGone"/>, e.g. a dead process on this machine). It is re-queued unless it has been started
/// <see cref="MaxAttempts"/> times already, in which case it is marked failed.</summary>
public sealed record ClaimPolicy(TimeSpan Grace, int MaxAttempts, Func<string, bool>? WorkerIsGone = null);

/// <summary>A trial to insert: the proposal with its plan.</summary>
public sealed record NewTrial(JsonObject Spec, string Key, JsonObject Genome, TrialPlan Plan);

public abstract record ClaimResult
{
    /// <summary>This worker now holds the trial (its <see cref="TrialRecord.Attempt"/> identifies the claim).</summary>
    public sealed record Claimed(TrialRecord Trial, bool IsNew) : ClaimResult;
    /// <summary>Nothing to do now, but trials are still running elsewhere (they may finish or be re-queued).</summary>
    public sealed record Wait(string Reason) : ClaimResult;
    /// <summary>The study has all its trials finished.</summary>
    public sealed record Done(string Reason) : ClaimResult;
}

/// <summary>How a trial ended: complete, pruned or failed, with its metrics and the reason when failed.</summary>
public sealed record TrialResult(TrialState State, IReadOnlyDictionary<string, double> Metrics, IReadOnlyList<IntermediateValue> Intermediate,
    string? Error, double Seconds)
{
    public static TrialResult Failed(string error, double seconds, IReadOnlyDictionary<string, double>? metrics = null) =>
        new(TrialState.Failed, metrics ?? new Dictionary<string, double>(), [], error, seconds);
}
