using System.Diagnostics;

namespace TransformerForge.Search;

/// <summary>What a worker reports as it goes (the CLI prints it; tests record it). Every method is optional.</summary>
public interface ISearchObserver
{
    void OnTrialStarted(TrialRecord trial, bool isNew) { }
    void OnTrialProgress(TrialRecord trial, string line) { }
    /// <summary>A trial ended; <paramref name="accepted"/> is false when the study refused the result (another attempt finished it).</summary>
    void OnTrialFinished(TrialRecord trial, TrialResult result, bool accepted, IReadOnlyList<TrialRecord> study) { }
    void OnWaiting(string reason) { }
}

/// <summary>Timing of a worker's coordination with the study.</summary>
public sealed record WorkerOptions
{
    /// <summary>How often a running trial's heartbeat is written.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>A running trial with no heartbeat for this long is taken as abandoned and re-queued.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>How long to sleep when there is nothing to claim but trials are still running elsewhere.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Stop after this many trials in this session (null: until the study is done).</summary>
    public int? MaxTrials { get; init; }
}

/// <summary>
/// One worker of a study: claims a trial (the algorithm proposes one when none is queued), evaluates it while a
/// background thread keeps its heartbeat, records the result, and repeats until the study has all its trials. It holds
/// no state between trials: stop it at any moment (even with kill -9) and any worker continues the study.
/// </summary>
public sealed class SearchWorker
{
    readonly IStudyStorage _storage;
    readonly StudyInfo _study;
    readonly ITrialEvaluator _evaluator;
    readonly ISearchAlgorithm _algorithm;
    readonly CandidateSource _candidates;
    readonly EvaluationSettings _settings;
    readonly WorkerOptions _options;
    readonly ISearchObserver _observer;

    public SearchWorker(IStudyStorage storage, StudyInfo study, ITrialEvaluator evaluator, CandidateSource candidates,
        EvaluationSettings settings, WorkerOptions? options = null, ISearchObserver? observer = null, string? worker = null)
    {
        _storage = storage;
        _study = study;
        _evaluator = evaluator;
        _candidates = candidates;
        _settings = settings;
        _algorithm = SearchAlgorithms.FromJson(study.Definition.Algorithm);
        _options = options ?? new WorkerOptions();
        _observer = observer ?? new NullObserver();
        Worker = worker ?? WorkerIdentity.Self;
    }

    public string Worker { get; }
    StudyDefinition Definition => _study.Definition;

    /// <summary>The policy for abandoned trials: silent for the grace period, or a dead process of this machine.</summary>
    public ClaimPolicy Policy => new(_options.Grace, Definition.MaxAttempts, WorkerIdentity.IsGone);

    /// <summary>Runs trials until the study is done, <see cref="WorkerOptions.MaxTrials"/> are run, or cancellation
    /// (the running trial is then given back to the queue). Returns why it stopped.</summary>
    public string Run(CancellationToken cancellation = default)
    {
        int ran = 0;
        while (!cancellation.IsCancellationRequested)
        {
            if (_options.MaxTrials is { } max && ran >= max) return $"ran {ran} trials";
            ClaimResult claim;
            try
            {
                claim = _storage.Claim(_study.Id, Worker, Propose, Policy);
            }
            catch (SpaceExhaustedException e)
            {
                return e.Message;
            }
            switch (claim)
            {
                case ClaimResult.Done done:
                    return done.Reason;
                case ClaimResult.Wait wait:
                    _observer.OnWaiting(wait.Reason);
                    cancellation.WaitHandle.WaitOne(_options.PollInterval);
                    continue;
                case ClaimResult.Claimed claimed:
                    RunTrial(claimed.Trial, claimed.IsNew, cancellation);
                    ran++;
                    break;
            }
        }
        return "stopped";
    }

    /// <summary>The algorithm's proposal for trial <paramref name="number"/>, with the study's hurdles and seed.</summary>
    public NewTrial? Propose(IReadOnlyList<TrialRecord> history, int number)
    {
        var context = new AskContext(number, AskContext.RandomFor(Definition.Seed, number), history, _candidates, Definition.Objectives);
        var proposal = _algorithm.Ask(context);
        if (proposal is null) return null;
        var hurdles = Definition.Hurdles is { } h && _algorithm is not SuccessiveHalving ? h.Thresholds(history, context.Primary) : [];
        var plan = new TrialPlan
        {
            Origin = proposal.Origin, Parents = proposal.Parents, Rung = proposal.Rung, BudgetFraction = proposal.BudgetFraction,
            Hurdles = hurdles, Seed = Definition.Seed,
        };
        var c = proposal.Candidate;
        return new NewTrial(c.Spec, c.Key, c.Genome.ToJson(_candidates.Parameters), plan);
    }

    void RunTrial(TrialRecord trial, bool isNew, CancellationToken cancellation)
    {
        _observer.OnTrialStarted(trial, isNew);
        var request = new TrialRequest { Spec = trial.Spec, Settings = _settings, Plan = trial.Plan, PrimaryMetric = Definition.Objectives[0].Metric };
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        using var stopBeating = new ManualResetEventSlim();
        var heart = new Thread(() =>
        {
            while (!stopBeating.Wait(_options.HeartbeatInterval))
            {
                try
                {
                    if (!_storage.Heartbeat(trial.Id, Worker, trial.Attempt))
                    {
                        lost.Cancel();   // re-queued and taken by another worker: stop working on it
                        return;
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A missed beat is harmless unless it lasts the grace period; keep trying.
                    Debug.WriteLine($"heartbeat failed: {e.Message}");
                }
            }
        }) { IsBackground = true, Name = $"heartbeat trial {trial.Number}" };
        heart.Start();
        TrialResult? result;
        try
        {
            result = _evaluator.Evaluate(trial, request, line => _observer.OnTrialProgress(trial, line), lost.Token);
        }
        finally
        {
            stopBeating.Set();
            heart.Join();
        }
        if (result is null)
        {
            if (cancellation.IsCancellationRequested) _storage.Release(trial.Id, Worker, trial.Attempt);
            return;
        }
        bool accepted = _storage.Finish(trial.Id, Worker, trial.Attempt, result);
        _observer.OnTrialFinished(trial, result, accepted, _storage.Trials(_study.Id));
    }

    sealed class NullObserver : ISearchObserver { }
}

/// <summary>Evaluates trials in this process with <see cref="TrialRunner"/> (no bounds: for tests and debugging).</summary>
public sealed class InProcessTrialEvaluator : ITrialEvaluator
{
    public TrialResult? Evaluate(TrialRecord trial, TrialRequest request, Action<string>? progress, CancellationToken cancellation) =>
        TrialRunner.Run(request, progress);
}
