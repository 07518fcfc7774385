using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Npgsql;
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

    /// <summary>Whether the server takes a new connection now.</summary>
    bool ServerAccepts()
    {
        var builder = PostgresUrl.Parse(_db.Url);
        builder.Pooling = false;
        builder.Timeout = 2;
        try
        {
            using var c = new NpgsqlConnection(builder.ConnectionString);
            c.Open();
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Live trial processes (<c>tforge search trial ... --trial N</c>) whose parent is <paramref name="pid"/>,
    /// with the trial number each runs.</summary>
    static List<(int Pid, int Trial)> TrialsOf(int pid)
    {
        var found = new List<(int, int)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var child)) continue;
            try
            {
                var rest = StatFields(child);
                var args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                int at = Array.IndexOf(args, "--trial");
                if (rest[0] != "Z" && rest[1] == pid.ToString() && args.Contains("search") && args.Contains("trial") && at >= 0 && at + 1 < args.Length
                    && int.TryParse(args[at + 1], out var number))
                    found.Add((child, number));
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    /// <summary>The fields of <c>/proc/PID/stat</c> after the command name: [0] is the state, [1] the parent.</summary>
    static string[] StatFields(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int signal);

    const int SIGCONT = 18, SIGSTOP = 19;

    /// <summary>Freezes a process (SIGSTOP) and returns once the kernel shows it stopped.</summary>
    static void Freeze(int pid)
    {
        Assert.Equal(0, kill(pid, SIGSTOP));
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (StatFields(pid)[0] != "T" && DateTime.UtcNow < until) Thread.Sleep(5);
        Assert.Equal("T", StatFields(pid)[0]);
    }

    /// <summary>
    /// Freezes <paramref name="group"/> (SIGSTOP) at a moment when every one of them is certainly mid-trial, and returns
    /// the trial each runs, leaving them frozen. A worker records a trial's result only after its child process has
    /// exited and been reaped, so a frozen worker with a live trial child holds that trial unfinished, and can neither
    /// finish it nor claim another until it is resumed. Whenever one of them is between trials (or its child has just
    /// exited) all are resumed and watched again. Seeing a child alone is not enough: it may be the previous trial's,
    /// still exiting, while the worker records that trial's result.
    /// </summary>
    static List<int> FreezeMidTrial(IReadOnlyList<CliProcess> group, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !group.Any(w => w.HasExited))
        {
            if (group.Any(w => TrialsOf(w.Id).Count == 0))
            {
                Thread.Sleep(20);
                continue;
            }
            foreach (var w in group) Freeze(w.Id);
            var running = group.Select(w => TrialsOf(w.Id)).ToList();
            if (running.All(r => r.Count == 1)) return running.Select(r => r[0].Trial).ToList();
            foreach (var w in group) Assert.Equal(0, kill(w.Id, SIGCONT));
        }
        Assert.Fail($"workers {string.Join(", ", group.Select(w => w.Id))} were never all mid-trial at once: " +
                    string.Join(" | ", group.Select(w => w.Stdout + w.Stderr)));
        return [];
    }

    static void Resume(IEnumerable<CliProcess> group)
    {
        foreach (var w in group) Assert.Equal(0, kill(w.Id, SIGCONT));
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
            // Two workers die by SIGKILL (no handler runs), each while it holds a trial it is evaluating in its child
            // process: frozen mid-trial (FreezeMidTrial), its attempt read from the study while it is frozen (nobody
            // re-queues it then: the process exists, and the grace period is 60 s), then killed.
            // Workers start cold and unevenly (a fresh build under load), so the second victim may well be running the
            // trial the first one abandoned: each kill is checked against the trial and attempt it held, not a count.
            var held = new List<(int Pid, string Worker, int Number, int Attempt)>();
            using (var watch = Storage())
            {
                foreach (var victim in workers.Take(2))
                {
                    var number = FreezeMidTrial([victim], TimeSpan.FromSeconds(90))[0];
                    var rows = watch.Trials(study.Id);
                    var row = rows.SingleOrDefault(t => t.Number == number && t.State == TrialState.Running && t.Worker?.Contains($"/{victim.Id}/") == true);
                    Assert.True(row is not null, $"worker {victim.Id} runs trial {number} but the study does not show it holding it: " +
                        string.Join("; ", rows.Select(t => $"{t.Number} {t.State} attempt {t.Attempt} by {t.Worker}")));
                    victim.KillParentOnly();
                    held.Add((victim.Id, row.Worker!, number, row.Attempt));
                }
            }
            foreach (var survivor in workers.Skip(2))
            {
                int code = survivor.Wait(Timeout);
                Assert.True(code == 0, survivor.Stdout + survivor.Stderr);
                Assert.Contains("all 8 trials are finished", survivor.Stdout);
            }

            using var storage = Storage();
            var all = storage.Trials(study.Id);
            AssertAccountedFor(all, trials);
            // Each abandoned attempt was re-queued at once (its worker is known gone on this machine, not after the
            // 60 s grace) and run again as the next attempt by a worker still alive then (a victim's own output counts:
            // the second victim may have re-run the first one's trial before it died in turn), and it is the only
            // re-run: one attempt per trial plus one per kill, so no trial was lost, none run twice over.
            var said = workers.SelectMany(w => w.Stdout.Split('\n')).Select(l => l.TrimEnd('\r')).Where(l => l.Contains("re-running")).ToList();
            string Story() => $"killed {string.Join(", ", held.Select(h => $"{h.Pid} holding trial {h.Number} attempt {h.Attempt}"))}; trials: " +
                string.Join("; ", all.Select(t => $"{t.Number} attempt {t.Attempt} by {t.Worker} ({t.Error})")) + $"; workers said: {string.Join(" | ", said)}";
            foreach (var (pid, worker, number, attempt) in held)
            {
                var row = all[number];
                Assert.True(row.Attempt > attempt && row.Worker?.Contains($"/{pid}/") == false, $"trial {number} was not re-run after worker {pid} died: {Story()}");
                var line = $"trial {number}: re-running (attempt {attempt + 1}; re-queued after attempt {attempt}: worker {worker} is gone)";
                Assert.True(said.Count(l => l.EndsWith(line, StringComparison.Ordinal)) == 1, $"expected once: '{line}'; {Story()}");
            }
            Assert.True(said.Count == held.Count, Story());
            Assert.True(all.Sum(t => t.Attempt) == trials + held.Count, Story());
            Assert.True(all.Select(t => t.Worker).Distinct().Count() >= 2, "the trials were not shared between workers");

            // One worker, same seed and budget: exactly the same candidates, trial by trial, with the same results.
            var single = Create(storage, "one", trials);
            var (candidates, settings) = SearchSetup.Prepare(single);
            new SearchWorker(storage, single, new InProcessTrialEvaluator(), candidates, settings, worker: "single").Run();
            var alone = storage.Trials(single.Id);
            AssertAccountedFor(alone, trials);
            Assert.Equal(alone.Select(t => t.Key), all.Select(t => t.Key));
            Assert.Equal(alone.Select(t => t.Metric(Metrics.Params)), all.Select(t => t.Metric(Metrics.Params)));
        }
        finally
        {
            foreach (var w in workers) w.Dispose();
        }
    }

    [Fact]
    public void WorkersReconnectAfterTheServerRestartsMidSearchAndGoOn()
    {
        const int trials = 9;
        StudyInfo study;
        using (var storage = Storage()) study = Create(storage, "restart", trials);
        var workers = Enumerable.Range(0, 3).Select(_ => new CliProcess(Worker("restart", "--grace", "3", "--reconnect", "120"), StorageEnvironment)).ToList();
        try
        {
            // The server crashes while every worker is mid-trial: they are frozen at such a moment (FreezeMidTrial), so
            // none can record its trial before the crash, and resumed as soon as the server is down, so each meets the
            // outage on its own (heartbeats fail; its child finishes; recording the result is retried until the server
            // is back). Waiting for some number of finished trials instead is a race under load: the workers of a cold
            // start may finish the search's other trials before the server goes down.
            FreezeMidTrial(workers, TimeSpan.FromSeconds(120));
            var down = TimeSpan.FromSeconds(3);
            var restarted = DateTimeOffset.UtcNow + down;   // the server is back no earlier than this
            var restart = Task.Run(() => server.Restart(down));
            try
            {
                var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (ServerAccepts() && !restart.IsCompleted && DateTime.UtcNow < until) Thread.Sleep(50);
            }
            finally
            {
                Resume(workers);
            }
            restart.GetAwaiter().GetResult();
            foreach (var w in workers)
            {
                int code = w.Wait(Timeout);
                Assert.True(code == 0, w.Stdout + w.Stderr);
            }
            using var after = Storage();
            var rows = after.Trials(study.Id);
            AssertAccountedFor(rows, trials);
            // Each worker recorded results after the server came back (at least the trial it held: so it reconnected),
            // and the outage orphaned nothing: every trial ran once.
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
