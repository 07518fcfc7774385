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
    /// <summary>The device this worker's trials train on (cpu, cuda, cuda:N): one worker per GPU.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Refuses settings under which a live trial would be re-queued between two of its own heartbeats.</summary>
    public void Validate()
    {
        if (HeartbeatInterval <= TimeSpan.Zero) throw new ArgumentException($"the heartbeat interval must be positive, got {HeartbeatInterval.TotalSeconds} s");
        if (Grace < 2 * HeartbeatInterval)
            throw new ArgumentException($"--grace ({Grace.TotalSeconds:0.###} s) must be at least twice --heartbeat ({HeartbeatInterval.TotalSeconds:0.###} s): " +
                                        "a live trial would be taken for abandoned between two of its heartbeats");
    }
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
        _options.Validate();
        _observer = observer ?? new NullObserver();
        Worker = worker ?? WorkerIdentity.Self;
        _roundTripsAtStart = storage.RoundTrips;
    }

    public string Worker { get; }
    StudyDefinition Definition => _study.Definition;

    /// <summary>What this worker has spent on coordinating with the study so far.</summary>
    public WorkerStats Stats => _stats with { RoundTrips = _storage.RoundTrips - _roundTripsAtStart };

    WorkerStats _stats = new();
    readonly long _roundTripsAtStart;
    double _proposeSeconds;

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
            var clock = Stopwatch.StartNew();
            _proposeSeconds = 0;
            try
            {
                claim = _storage.Claim(_study.Id, Worker, TimedPropose, Policy);
            }
            catch (SpaceExhaustedException e)
            {
                return e.Message;
            }
            finally
            {
                _stats = _stats with
                {
                    Claims = _stats.Claims + 1,
                    StorageSeconds = _stats.StorageSeconds + clock.Elapsed.TotalSeconds - _proposeSeconds,
                    ProposeSeconds = _stats.ProposeSeconds + _proposeSeconds,
                };
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

    NewTrial? TimedPropose(IReadOnlyList<TrialRecord> history, int number)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            return Propose(history, number);
        }
        finally
        {
            _proposeSeconds += clock.Elapsed.TotalSeconds;
        }
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
        var request = new TrialRequest
        {
            Spec = trial.Spec, Settings = _settings, Plan = trial.Plan, PrimaryMetric = Definition.Objectives[0].Metric, Device = _options.Device,
        };
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
        var clock = Stopwatch.StartNew();
        bool accepted = _storage.Finish(trial.Id, Worker, trial.Attempt, result);
        var trials = _storage.Trials(_study.Id);
        _stats = _stats with { Trials = _stats.Trials + 1, StorageSeconds = _stats.StorageSeconds + clock.Elapsed.TotalSeconds };
        _observer.OnTrialFinished(trial, result, accepted, trials);
    }

    sealed class NullObserver : ISearchObserver { }
}

/// <summary>
/// A worker's coordination cost: <see cref="StorageSeconds"/> is the time its main loop spent in the study storage
/// (claiming, recording results, reading the study; not the heartbeats of its background thread, whose requests are in
/// <see cref="RoundTrips"/> though), <see cref="ProposeSeconds"/> the time the algorithm took to propose.
/// </summary>
public sealed record WorkerStats
{
    /// <summary>Trials this worker finished (whether or not the study accepted the result).</summary>
    public int Trials { get; init; }
    public int Claims { get; init; }
    public double StorageSeconds { get; init; }
    public double ProposeSeconds { get; init; }
    public long RoundTrips { get; init; }

    public string Describe() => Trials == 0 ? "no trial finished here"
        : $"{Trials} trials here; coordination {1000 * StorageSeconds / Trials:0.0} ms and {(double)RoundTrips / Trials:0.0} database round trips per trial, " +
          $"proposing {1000 * ProposeSeconds / Trials:0.0} ms per trial";
}

/// <summary>Evaluates trials in this process with <see cref="TrialRunner"/> (no bounds: for tests and debugging).</summary>
public sealed class InProcessTrialEvaluator : ITrialEvaluator
{
    public TrialResult? Evaluate(TrialRecord trial, TrialRequest request, Action<string>? progress, CancellationToken cancellation) =>
        TrialRunner.Run(request, progress);
}
