using System.Text.Json.Nodes;
using TransformerForge.Search;
using TransformerForge.Tests.Data;

namespace TransformerForge.Tests.Search;

/// <summary>
/// What every study storage guarantees (<see cref="IStudyStorage"/>), run against each backend: exact claiming between
/// connections, re-queueing of abandoned trials, refused late results, persistence, and one study per name however
/// many workers create it at once.
/// </summary>
public abstract class StudyStorageContract : IDisposable
{
    /// <summary>A new connection to this test's store (the first one creates it).</summary>
    protected abstract IStudyStorage Open();

    public virtual void Dispose() { }

    static StudyDefinition Definition(string name = "s") => new()
    {
        Name = name,
        Space = new JsonObject { ["space"] = "grid" },
        Objectives = [Objective.Of(Metrics.ValLoss)],
        Algorithm = new JsonObject { ["name"] = "random" },
        Evaluation = new JsonObject(),
        Seed = 1,
    };

    static int _counter;

    /// <summary>A proposal with a fresh key (its number in the spec).</summary>
    static NewTrial Propose(IReadOnlyList<TrialRecord> history, int number)
    {
        Interlocked.Increment(ref _counter);
        var spec = new JsonObject { ["n"] = number };
        return new NewTrial(spec, Candidate.KeyOf(spec), new JsonObject { ["x"] = number }, new TrialPlan { Seed = 1 });
    }

    static readonly ClaimPolicy Policy = new(TimeSpan.FromMinutes(1), 3);

    static TrialResult Done(double loss) => new(TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = loss }, [], null, 0.1);

    static TrialRecord Claim(IStudyStorage storage, StudyInfo study, string worker, ClaimPolicy? policy = null) =>
        Assert.IsType<ClaimResult.Claimed>(storage.Claim(study.Id, worker, Propose, policy ?? Policy)).Trial;

    [Fact]
    public void TrialsAreNumberedInOrderAndSurviveReopening()
    {
        using (var storage = Open())
        {
            var study = storage.OpenOrCreate(Definition(), 3);
            for (int i = 0; i < 3; i++)
            {
                var t = Claim(storage, study, "w");
                Assert.Equal(i, t.Number);
                Assert.Equal(TrialState.Running, t.State);
                Assert.Equal(1, t.Attempt);
                Assert.True(storage.Finish(t.Id, "w", 1, Done(i)));
            }
            Assert.IsType<ClaimResult.Done>(storage.Claim(study.Id, "w", Propose, Policy));
        }
        using (var storage = Open())
        {
            var study = storage.Find("s")!;
            Assert.Equal(Definition().ToJsonString(), study.Definition.ToJsonString());
            var trials = storage.Trials(study.Id);
            Assert.Equal([0, 1, 2], trials.Select(t => t.Number));
            Assert.All(trials, t => Assert.Equal(TrialState.Complete, t.State));
            Assert.Equal(2.0, trials[2].Metric(Metrics.ValLoss));
            // A finished trial never changes.
            Assert.False(storage.Finish(trials[0].Id, "w", 1, Done(99)));
            Assert.Equal(0.0, storage.Trials(study.Id)[0].Metric(Metrics.ValLoss));
            // Raising the budget continues the study.
            storage.SetMaxTrials(study.Id, 4);
            Assert.Equal(3, Claim(storage, study, "w").Number);
        }
    }

    [Fact]
    public void ConcurrentWorkersNeverShareATrial()
    {
        const int workers = 4, trials = 40;
        // Every worker opens the (empty) store and creates the study at the same moment, over its own connection.
        var storages = new IStudyStorage[workers];
        var studies = new StudyInfo[workers];
        using (var start = new Barrier(workers))
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            {
                start.SignalAndWait();
                storages[w] = Open();
                start.SignalAndWait();
                studies[w] = storages[w].OpenOrCreate(Definition(), trials);
            });
        Assert.Single(studies.Select(s => s.Id).Distinct());
        Assert.Single(storages[0].List());

        var claimed = new System.Collections.Concurrent.ConcurrentBag<(int Number, string Worker)>();
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
        {
            var name = $"w{w}";
            while (storages[w].Claim(studies[w].Id, name, Propose, Policy) is ClaimResult.Claimed c)
            {
                claimed.Add((c.Trial.Number, name));
                Assert.True(storages[w].Finish(c.Trial.Id, name, c.Trial.Attempt, Done(c.Trial.Number)));
            }
        });
        Assert.Equal(Enumerable.Range(0, trials), claimed.Select(c => c.Number).Order());
        var all = storages[0].Trials(studies[0].Id);
        Assert.Equal(trials, all.Count);
        Assert.All(all, t => Assert.Equal(TrialState.Complete, t.State));
        foreach (var s in storages) s.Dispose();
    }

    [Fact]
    public void AbandonedTrialsAreRequeuedThenFailedAfterTheirAttempts()
    {
        using var storage = Open();
        var study = storage.OpenOrCreate(Definition(), 2);
        var silent = new ClaimPolicy(TimeSpan.Zero, 2);   // no heartbeat is recent enough: everything running is abandoned

        var first = Claim(storage, study, "a");
        // Worker b finds trial 0 abandoned and runs it again (attempt 2) rather than starting trial 1.
        var again = Claim(storage, study, "b", silent);
        Assert.Equal(first.Id, again.Id);
        Assert.Equal(2, again.Attempt);
        Assert.Contains("re-queued after attempt 1", again.Error);
        // a's heartbeat and late result are refused: b holds the trial now.
        Assert.False(storage.Heartbeat(first.Id, "a", 1));
        Assert.False(storage.Finish(first.Id, "a", 1, Done(1)));
        Assert.True(storage.Heartbeat(again.Id, "b", 2));

        // Abandoned a second time: with 2 attempts allowed it is failed, and the next claim is a new trial.
        var next = Claim(storage, study, "c", silent);
        Assert.Equal(1, next.Number);
        var failed = storage.Trials(study.Id)[0];
        Assert.Equal(TrialState.Failed, failed.State);
        Assert.Contains("abandoned 2 times", failed.Error);
        Assert.False(storage.Finish(again.Id, "b", 2, Done(1)));
    }

    [Fact]
    public void DeadWorkersTrialsAreRequeuedAtOnceAndAWaitingTrialCanBeFinishedOnce()
    {
        using var storage = Open();
        var study = storage.OpenOrCreate(Definition(), 3);
        var t = Claim(storage, study, "dead");
        var gone = new ClaimPolicy(TimeSpan.FromHours(1), 3, w => w == "dead");
        var rerun = Claim(storage, study, "alive", gone);
        Assert.Equal(t.Id, rerun.Id);

        // Released (the worker stops): back in the queue, and the attempt is not counted.
        Assert.True(storage.Release(rerun.Id, "alive", rerun.Attempt));
        var queued = storage.Trials(study.Id)[0];
        Assert.Equal(TrialState.Waiting, queued.State);
        Assert.Equal(1, queued.Attempt);
        // A slow original worker's result still counts while nobody else holds the trial — once.
        Assert.True(storage.Finish(t.Id, "dead", 1, Done(0.5)));
        Assert.False(storage.Finish(t.Id, "dead", 1, Done(0.4)));
        Assert.Equal(0.5, storage.Trials(study.Id)[0].Metric(Metrics.ValLoss));
    }

    [Fact]
    public void WaitsWhileOthersRunAndIsDoneWhenAllFinished()
    {
        using var storage = Open();
        var study = storage.OpenOrCreate(Definition(), 1);
        var t = Claim(storage, study, "a");
        Assert.IsType<ClaimResult.Wait>(storage.Claim(study.Id, "b", Propose, Policy));
        // An algorithm with nothing to propose makes a worker wait too.
        storage.SetMaxTrials(study.Id, 2);
        Assert.IsType<ClaimResult.Wait>(storage.Claim(study.Id, "b", (_, _) => null, Policy));
        storage.SetMaxTrials(study.Id, 1);
        Assert.True(storage.Finish(t.Id, "a", 1, Done(1)));
        Assert.IsType<ClaimResult.Done>(storage.Claim(study.Id, "b", Propose, Policy));
    }
}

/// <summary>The SQLite study file: the contract, plus how this machine's dead workers are recognised and a damaged file.</summary>
public sealed class StudyStorageTests : StudyStorageContract
{
    readonly TempDir _tmp = new();

    protected override IStudyStorage Open() => new SqliteStudyStorage(Path.Combine(_tmp.Path, "s.db"));

    public override void Dispose() => _tmp.Dispose();

    [Fact]
    public void ThisMachinesDeadProcessesAreKnownGone()
    {
        Assert.False(WorkerIdentity.IsGone(WorkerIdentity.Self));
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
        var name = WorkerIdentity.Name(p.Id);
        Assert.False(WorkerIdentity.IsGone(name));
        p.Kill();
        p.WaitForExit();
        Assert.True(WorkerIdentity.IsGone(name));
        // Another machine's worker is judged by its heartbeats only.
        Assert.False(WorkerIdentity.IsGone("elsewhere/1/1"));
    }

    [Fact]
    public void ADamagedStudyFileIsOneClearError()
    {
        using var tmp = new TempDir();
        var path = tmp.File("bad.db", "this is not a database, just text that is long enough to have a header........");
        var e = Assert.Throws<InvalidDataException>(() => new SqliteStudyStorage(path));
        Assert.Contains("not a usable study file", e.Message);
    }

    [Fact]
    public void AWorkerInAnotherPidNamespaceWithThisHostNameIsNotJudgedFromHere()
    {
        var parts = WorkerIdentity.Self.Split('/');
        Assert.Equal(4, parts.Length);
        // Same host name (a container sharing the host's network), a pid that does not exist here, another pid namespace.
        Assert.False(WorkerIdentity.IsGone($"{parts[0]}/999999/1/00000000-1"));
        Assert.True(WorkerIdentity.IsGone($"{parts[0]}/999999/1/{parts[3]}"));
    }
}
