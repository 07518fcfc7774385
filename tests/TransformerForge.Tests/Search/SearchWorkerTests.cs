using System.Text.Json.Nodes;
using TransformerForge.Search;
using TransformerForge.Tests.Data;
using TransformerForge.Training;

namespace TransformerForge.Tests.Search;

/// <summary>The worker loop over a real SQLite study with a synthetic evaluator: hurdles written into plans, heartbeats,
/// giving a trial back when stopped, and a study finished by two workers one after the other.</summary>
public class SearchWorkerTests
{
    static readonly int[] Target = [2, 0, 3, 1];

    sealed class Synthetic(Func<TrialRecord, TrialRequest, TrialResult?> f) : ITrialEvaluator
    {
        public List<TrialRequest> Requests { get; } = new();

        public TrialResult? Evaluate(TrialRecord trial, TrialRequest request, Action<string>? progress, CancellationToken cancellation)
        {
            lock (Requests) Requests.Add(request);
            return f(trial, request);
        }
    }

    static double Distance(TrialRecord t) => GridSpace.Values(t).Select((v, i) => (double)(v - Target[i]) * (v - Target[i])).Sum();

    static (SqliteStudyStorage Storage, StudyInfo Study) Study(TempDir tmp, int trials, HurdlePolicy? hurdles = null)
    {
        var storage = new SqliteStudyStorage(Path.Combine(tmp.Path, "s.db"));
        var definition = new StudyDefinition
        {
            Name = "w", Space = new JsonObject { ["space"] = "grid" }, Objectives = [Objective.Of(Metrics.ValLoss)],
            Algorithm = new RegularizedEvolution(population: 5, sampleSize: 3).ToJson(), Hurdles = hurdles, Evaluation = new JsonObject(), Seed = 4,
        };
        return (storage, storage.OpenOrCreate(definition, trials));
    }

    static EvaluationSettings Settings => new() { Data = TrainingDataSpec.ForTask("copy"), Metrics = [Metrics.ValLoss], BudgetSteps = 100 };

    [Fact]
    public void HurdlesFromFinishedTrialsAreWrittenIntoEachNewPlan()
    {
        using var tmp = new TempDir();
        var (storage, study) = Study(tmp, 12, new HurdlePolicy([0.5], MinTrials: 3));
        using var _ = storage;
        var evaluator = new Synthetic((t, r) =>
        {
            var value = Distance(t) + 1;
            var intermediate = new List<IntermediateValue> { new(0.5, 50, 1, value) };
            var failed = r.Plan.Hurdles.Any(h => HurdlePolicy.Fails(h, value, Objective.Of(Metrics.ValLoss)));
            return new TrialResult(failed ? TrialState.Pruned : TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = failed ? value : Distance(t) }, intermediate, null, 0);
        });
        var worker = new SearchWorker(storage, study, evaluator, new CandidateSource(new GridSpace(4, 4)), Settings);
        Assert.Contains("finished", worker.Run());
        var trials = storage.Trials(study.Id);
        Assert.Equal(12, trials.Count);
        // Every trial measures at the hurdle; the first three have no threshold yet.
        Assert.All(trials.Take(3), t => Assert.Null(Assert.Single(t.Plan.Hurdles).Threshold));
        for (int n = 3; n < trials.Count; n++)
        {
            var earlier = trials.Take(n).Select(t => t.Intermediate[0].Value).Order().ToList();
            Assert.Equal(HurdlePolicy.PercentileOf(earlier, 50), Assert.Single(trials[n].Plan.Hurdles).Threshold);
        }
        Assert.Contains(trials, t => t.State == TrialState.Pruned);
        Assert.All(trials, t => Assert.Equal(4, t.Plan.Seed));
        Assert.Equal(trials.Select(t => StudyJson.Plan(t.Plan)), evaluator.Requests.Select(r => StudyJson.Plan(r.Plan)));
    }

    [Fact]
    public void AStoppedWorkerGivesItsTrialBackAndAnotherFinishesTheStudy()
    {
        using var tmp = new TempDir();
        var (storage, study) = Study(tmp, 6);
        using var _ = storage;
        using var stop = new CancellationTokenSource();
        int beats = 0;
        var slow = new Synthetic((t, r) =>
        {
            if (t.Number < 2) return new TrialResult(TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = Distance(t) }, [], null, 0);
            // Trial 2 runs until the worker is stopped, beating meanwhile.
            while (storage.Trials(study.Id)[2].HeartbeatAt == t.HeartbeatAt) Thread.Sleep(20);
            beats++;
            stop.Cancel();
            return null;
        });
        var first = new SearchWorker(storage, study, slow, new CandidateSource(new GridSpace(4, 4)), Settings,
            new WorkerOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(50) }, worker: "first");
        Assert.Equal("stopped", first.Run(stop.Token));
        Assert.Equal(1, beats);
        var given = storage.Trials(study.Id)[2];
        Assert.Equal(TrialState.Waiting, given.State);
        Assert.Equal(0, given.Attempt);

        var fast = new Synthetic((t, r) => new TrialResult(TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = Distance(t) }, [], null, 0));
        var second = new SearchWorker(storage, study, fast, new CandidateSource(new GridSpace(4, 4)), Settings, worker: "second");
        second.Run();
        var trials = storage.Trials(study.Id);
        Assert.Equal(6, trials.Count);
        Assert.All(trials, t => Assert.Equal(TrialState.Complete, t.State));
        Assert.Equal("second", trials[2].Worker);
        Assert.Equal(1, trials[2].Attempt);
        Assert.Equal(given.Key, trials[2].Key);
    }

    [Fact]
    public void EachWorkersTrialsTrainOnItsOwnDevice()
    {
        using var tmp = new TempDir();
        var (storage, study) = Study(tmp, 2);
        using var _ = storage;
        var evaluator = new Synthetic((t, r) => new TrialResult(TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = Distance(t) }, [], null, 0));
        new SearchWorker(storage, study, evaluator, new CandidateSource(new GridSpace(4, 4)), Settings, new WorkerOptions { Device = "cuda:3" }).Run();
        Assert.All(evaluator.Requests, r => Assert.Equal("cuda:3", r.Device));
        Assert.Equal("cuda:3", TrialRequest.Parse(evaluator.Requests[0].ToJsonString()).Device);   // it reaches the trial process

        // The trial trains where its request says (a device this build cannot know proves the trainer was asked).
        var request = new TrialRequest
        {
            Spec = JsonNode.Parse("""{ "type": "TransformerWrapper", "num_tokens": 8, "max_seq_len": 16, "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "heads": 2 } }""")!.AsObject(),
            Settings = Settings with { Data = TrainingDataSpec.ForTask("copy", new TransformerForge.Data.SyntheticTaskOptions(3, 4)), BudgetSteps = 1 },
            Plan = new TrialPlan(), PrimaryMetric = Metrics.ValLoss, Device = "tpu",
        };
        Assert.Contains("unknown device 'tpu'", Assert.Throws<ArgumentException>(() => TrialRunner.Run(request)).Message);
        Assert.Equal(TrialState.Complete, TrialRunner.Run(request with { Device = "cpu" }).State);
    }

    [Fact]
    public void AGracePeriodShorterThanTwoHeartbeatsIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new WorkerOptions { HeartbeatInterval = TimeSpan.FromSeconds(10), Grace = TimeSpan.FromSeconds(15) }.Validate());
        Assert.Contains("must be at least twice --heartbeat", e.Message);
        new WorkerOptions { HeartbeatInterval = TimeSpan.FromSeconds(10), Grace = TimeSpan.FromSeconds(20) }.Validate();
    }
}
