using System.Text.Json.Nodes;
using TransformerForge.Data;
using TransformerForge.Search;
using TransformerForge.Tests.Data;
using TransformerForge.Tests.Training;
using TransformerForge.Training;

namespace TransformerForge.Tests.Search;

/// <summary>
/// Workers of one PostgreSQL study as users run them (<c>tforge search worker</c> processes against a real server):
/// four workers with two killed by SIGKILL mid-trial, a server restart mid-search, two workers creating the study at
/// the same instant on an empty database, the connection string kept out of every output, and asynchronous evolution
/// in which no worker waits for another.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class DistributedSearchTests(PostgresServer server) : IDisposable
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);
    /// <summary>The variable the tests pass the storage in (<c>--storage env:...</c>): never on a command line.</summary>
    const string StorageVariable = "TFORGE_TEST_STUDY_STORAGE";

    const string Space = """
        { "space": "x-transformers",
          "model": { "type": "TransformerWrapper", "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "attn_dim_head": 8 } },
          "choices": { "attn_layers.ff_relu_squared": [false, true], "attn_layers.attn_dconv": [false, true], "attn_layers.depth": [1, 2],
                       "attn_layers.ff_glu": [false, true], "attn_layers.heads": [1, 2] } }
        """;

    readonly TempDir _tmp = new();
    readonly PostgresServer.Database _db = server.CreateDatabase();

    public void Dispose()
    {
        _db.Dispose();
        _tmp.Dispose();
    }

    Dictionary<string, string?> StorageEnvironment => new() { [StorageVariable] = _db.Url };

    /// <summary>The study's definition on the command line: random search, trials scored by their parameter count.</summary>
    string[] Define(string study, int trials) =>
    [
        "--study", study, "--space", _tmp.File("space.json", Space), "--trials", trials.ToString(), "--algorithm", "random",
        "--objective", "params", "--task", "reverse", "--task-length", "3", "--task-symbols", "4", "--seed", "3",
    ];

    static string[] Worker(string study, params string[] more) =>
        ["search", "worker", "--storage", $"env:{StorageVariable}", "--study", study, "--heartbeat", "0.5", .. more];

    StudyInfo Create(IStudyStorage storage, string study, int trials) => SearchSetup.OpenOrCreate(storage, new SearchRequest
    {
        Study = study, SpacePath = _tmp.File("space.json", Space), Algorithm = "random", Objectives = [Metrics.Params], Trials = trials,
        Data = TrainingDataSpec.ForTask("reverse", new SyntheticTaskOptions(3, 4)), Seed = 3,
    });

    PostgresStudyStorage Storage() => new(_db.Url, TimeSpan.FromSeconds(60));

    /// <summary>Live trial processes (<c>tforge search trial</c>) whose parent is <paramref name="pid"/>.</summary>
    static List<int> TrialsOf(int pid)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var child)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (rest[0] != "Z" && rest[1] == pid.ToString() && cmdline.Contains(" search trial ")) found.Add(child);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    /// <summary>Processes of this machine whose command line contains <paramref name="text"/>.</summary>
    static List<int> CommandLinesWith(string text)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Contains(text)) found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    static void AssertAccountedFor(IReadOnlyList<TrialRecord> trials, int count)
    {
        Assert.Equal(Enumerable.Range(0, count), trials.Select(t => t.Number));
        Assert.All(trials, t => Assert.True(t.State == TrialState.Complete, $"trial {t.Number}: {t.State} {t.Error}"));
        Assert.All(trials, t => Assert.True(t.Metric(Metrics.Params) is > 0));
        Assert.Equal(count, trials.Select(t => t.Key).Distinct().Count());
    }

    [Fact]
    public void FourWorkersTwoKilledMidTrialFinishEveryTrialAndEvaluateWhatOneWorkerDoes()
    {
        const int trials = 8;
        StudyInfo study;
        using (var storage = Storage()) study = Create(storage, "four", trials);

        var workers = Enumerable.Range(0, 4).Select(_ => new CliProcess(Worker("four"), StorageEnvironment)).ToList();
        try
        {
            // Two workers die by SIGKILL (no handler runs) while each holds a trial it is evaluating in its child process.
            // "Holds" is read from the study: a child process alone may be the previous trial's, still exiting.
            var killed = new List<int>();
            using (var watch = Storage())
            {
                foreach (var victim in workers.Take(2))
                {
                    bool Holds() => watch.Trials(study.Id).Any(t => t.State == TrialState.Running && t.Worker?.Contains($"/{victim.Id}/") == true);
                    var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
                    while (!(TrialsOf(victim.Id).Count > 0 && Holds()) && !victim.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(20);
                    Assert.False(victim.HasExited, $"worker {victim.Id} ended before it could be killed: {victim.Stdout}{victim.Stderr}");
                    victim.KillParentOnly();
                    killed.Add(victim.Id);
                }
            }
            foreach (var survivor in workers.Skip(2))
            {
                int code = survivor.Wait(Timeout);
                Assert.True(code == 0, survivor.Stdout + survivor.Stderr);
                Assert.Contains("all 8 trials are finished", survivor.Stdout);
            }

            using var storage = Storage();
            var rows = storage.Trials(study.Id);
            AssertAccountedFor(rows, trials);
            // The killed workers' trials were re-run by the others (the same machine knows its dead processes at once).
            var rerun = rows.Where(t => t.Attempt == 2).ToList();
            Assert.True(rerun.Count == 2, $"killed {string.Join(", ", killed)}; trials: " +
                string.Join("; ", rows.Select(t => $"{t.Number} attempt {t.Attempt} by {t.Worker} ({t.Error})")) +
                $"; survivors said: {string.Join(" | ", workers.Skip(2).SelectMany(w => w.Stdout.Split('\n')).Where(l => l.Contains("re-running")))}");
            var rerunLines = workers.Skip(2).SelectMany(w => w.Stdout.Split('\n')).Where(l => l.Contains("re-running (attempt 2; re-queued after attempt 1: worker")).ToList();
            Assert.All(killed, pid => Assert.Single(rerunLines, l => l.Contains($"/{pid}/") && l.Contains("is gone")));
            Assert.True(rows.Select(t => t.Worker).Distinct().Count() >= 2, "the trials were not shared between workers");

            // One worker, same seed and budget: exactly the same candidates, trial by trial, with the same results.
            var single = Create(storage, "one", trials);
            var (candidates, settings) = SearchSetup.Prepare(single);
            new SearchWorker(storage, single, new InProcessTrialEvaluator(), candidates, settings, worker: "single").Run();
            var alone = storage.Trials(single.Id);
            AssertAccountedFor(alone, trials);
            Assert.Equal(alone.Select(t => t.Key), rows.Select(t => t.Key));
            Assert.Equal(alone.Select(t => t.Metric(Metrics.Params)), rows.Select(t => t.Metric(Metrics.Params)));
        }
        finally
        {
            foreach (var w in workers) w.Dispose();
        }
    }

    [Fact]
    public void WorkersReconnectAfterTheServerRestartsMidSearchAndGoOn()
    {
        const int trials = 6;
        StudyInfo study;
        using (var storage = Storage()) study = Create(storage, "restart", trials);
        var workers = Enumerable.Range(0, 3).Select(_ => new CliProcess(Worker("restart", "--grace", "3", "--reconnect", "120"), StorageEnvironment)).ToList();
        try
        {
            using (var storage = Storage())
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
                while (storage.Trials(study.Id).Count(t => t.IsFinished) < 2 && DateTime.UtcNow < deadline) Thread.Sleep(100);
                Assert.True(storage.Trials(study.Id).Count(t => t.IsFinished) < trials, "the search ended before the restart");
            }
            var down = TimeSpan.FromSeconds(3);
            var restarted = DateTimeOffset.UtcNow + down;   // the server is back no earlier than this
            server.Restart(down);
            foreach (var w in workers)
            {
                int code = w.Wait(Timeout);
                Assert.True(code == 0, w.Stdout + w.Stderr);
            }
            using var after = Storage();
            var rows = after.Trials(study.Id);
            AssertAccountedFor(rows, trials);
            // Each worker recorded results after the server came back (so it reconnected), and the outage orphaned
            // nothing: every trial ran once.
            Assert.Equal(3, rows.Where(t => t.FinishedAt > restarted).Select(t => t.Worker).Distinct().Count());
            Assert.All(rows, t => Assert.True(t.Attempt == 1, $"trial {t.Number} ran {t.Attempt} times: {t.Error}"));
        }
        finally
        {
            foreach (var w in workers) w.Dispose();
        }
    }

    [Fact]
    public void TwoWorkersStartedAtOnceOnAnEmptyDatabaseShareOneStudyAndNeverShowThePassword()
    {
        const int trials = 4;
        string[] args = ["search", "--storage", $"env:{StorageVariable}", .. Define("twin", trials), "--verbose"];
        var a = new CliProcess(args, StorageEnvironment);
        var b = new CliProcess(args, StorageEnvironment);
        using (a)
        using (b)
        {
            // The password is in no process's command line (trial processes included) while they run.
            var deadline = DateTime.UtcNow + Timeout;
            while ((!a.HasExited || !b.HasExited) && DateTime.UtcNow < deadline)
            {
                Assert.Empty(CommandLinesWith(server.Password));
                Thread.Sleep(50);
            }
            Assert.True(a.Wait(Timeout) == 0, a.Stdout + a.Stderr);
            Assert.True(b.Wait(Timeout) == 0, b.Stdout + b.Stderr);
            foreach (var p in new[] { a, b })
            {
                Assert.Contains($"study 'twin' in postgresql://tforge@", p.Stdout);
                Assert.DoesNotContain(server.Password, p.Stdout + p.Stderr);
            }
        }
        using (var storage = Storage())
        {
            var study = Assert.Single(storage.List());
            AssertAccountedFor(storage.Trials(study.Id), trials);
        }

        // Reading the study, a wrong password, a bad URL, --help with the variable set: the password appears nowhere.
        var show = new CliProcess(["search", "show", "--study", "twin"], new Dictionary<string, string?> { ["TFORGE_STORAGE"] = _db.Url });
        Assert.True(show.Wait(Timeout) == 0, show.Stdout + show.Stderr);
        Assert.Contains("trial", show.Stdout);
        var wrongUrl = _db.Url.Replace(server.Password, "Wrong" + server.Password);
        var wrong = new CliProcess(["search", "worker", "--storage", "env:X", "--study", "twin"], new Dictionary<string, string?> { ["X"] = wrongUrl });
        Assert.Equal(2, wrong.Wait(Timeout));
        Assert.Contains("28P01", wrong.Stderr);
        var bad = new CliProcess(["search", "worker", "--storage", "env:X", "--study", "twin"], new Dictionary<string, string?> { ["X"] = _db.Url + "?sslmode=sometimes" });
        Assert.Equal(2, bad.Wait(Timeout));
        Assert.Contains("bad value for 'sslmode'", bad.Stderr);
        var help = new CliProcess(["search", "worker", "--help"], new Dictionary<string, string?> { ["TFORGE_STORAGE"] = _db.Url });
        Assert.Equal(0, help.Wait(Timeout));
        foreach (var p in new[] { show, wrong, bad, help })
        {
            Assert.DoesNotContain(server.Password, p.Stdout + p.Stderr);
            Assert.DoesNotContain("   at ", p.Stderr);
            p.Dispose();
        }
    }

    [Fact]
    public void EvolutionWorkersNeverWaitForEachOther()
    {
        using var storage = Storage();
        var definition = new StudyDefinition
        {
            Name = "async", Space = new JsonObject { ["space"] = "grid" }, Objectives = [Objective.Of(Metrics.ValLoss)],
            Algorithm = new RegularizedEvolution(population: 4, sampleSize: 2).ToJson(), Evaluation = new JsonObject(), Seed = 5,
        };
        const int trials = 16;
        var study = storage.OpenOrCreate(definition, trials);
        var settings = new EvaluationSettings { Data = TrainingDataSpec.ForTask("copy"), Metrics = [Metrics.ValLoss], BudgetSteps = 1 };
        using var release = new ManualResetEventSlim();
        // Worker "slow" holds its first trial until the others have run every other trial of the study.
        var slow = new Evaluator(t =>
        {
            release.Wait(TimeSpan.FromSeconds(120));
            return GridSpace.Values(t).Sum();
        });
        var fast = new Evaluator(t => GridSpace.Values(t).Sum());
        var candidates = new CandidateSource(new GridSpace(4, 4));
        var options = new WorkerOptions { HeartbeatInterval = TimeSpan.FromSeconds(0.5), PollInterval = TimeSpan.FromMilliseconds(100) };
        Thread Start(string name, ITrialEvaluator evaluator, WorkerOptions o)
        {
            var thread = new Thread(() =>
            {
                using var own = Storage();
                new SearchWorker(own, study, evaluator, candidates, settings, o, worker: name).Run();
            });
            thread.Start();
            return thread;
        }
        var slowThread = Start("slow", slow, options with { MaxTrials = 1 });
        while (storage.Trials(study.Id).Count == 0) Thread.Sleep(20);
        var others = Enumerable.Range(0, 2).Select(i => Start($"fast{i}", fast, options)).ToList();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (storage.Trials(study.Id).Count(t => t.IsFinished) < trials - 1 && DateTime.UtcNow < deadline) Thread.Sleep(50);
        var othersFinished = storage.Trials(study.Id).Count(t => t.IsFinished);
        release.Set();
        slowThread.Join();
        others.ForEach(t => t.Join());

        Assert.Equal(trials - 1, othersFinished);
        var rows = storage.Trials(study.Id);
        Assert.All(rows, t => Assert.Equal(TrialState.Complete, t.State));
        Assert.Equal("slow", rows[0].Worker);
        // Past the first population, children were bred from the trials finished so far, while trial 0 still ran.
        var bred = rows.Where(t => t.Number >= 4).ToList();
        Assert.All(bred, t => Assert.Equal("mutation", t.Plan.Origin));
        Assert.All(bred, t => Assert.DoesNotContain(0, t.Plan.Parents));
    }

    sealed class Evaluator(Func<TrialRecord, double> f) : ITrialEvaluator
    {
        public TrialResult? Evaluate(TrialRecord trial, TrialRequest request, Action<string>? progress, CancellationToken cancellation) =>
            new(TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = f(trial) }, [], null, 0);
    }
}
