using System.Diagnostics;
using System.Text.Json.Nodes;
using TransformerForge.Config;
using TransformerForge.Search;
using TransformerForge.Tests.Data;
using TransformerForge.Tests.Training;
using TransformerForge.Training;

namespace TransformerForge.Tests.Search;

/// <summary><c>tforge search</c> as a user runs it: killed with SIGKILL again and again, failing candidates, bounds,
/// errors, show and export.</summary>
public class SearchCommandTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    const string TinySpace = """
        { "space": "x-transformers",
          "model": { "type": "TransformerWrapper", "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "attn_dim_head": 8 } },
          "choices": { "attn_layers.ff_relu_squared": [false, true], "attn_layers.attn_dconv": [false, true], "attn_layers.depth": [1, 2] } }
        """;

    static string[] Args(string storage, string study, string space, int trials, params string[] more) =>
    [
        "search", "--storage", storage, "--study", study, "--space", space, "--trials", trials.ToString(), "--algorithm", "random",
        "--task", "reverse", "--task-length", "3", "--task-symbols", "4", "--budget-steps", "3", "--batch", "4", "--eval-batches", "1",
        "--warmup", "1", "--seed", "3", "--heartbeat", "1", .. more,
    ];

    /// <summary>Processes of this machine whose command line mentions <paramref name="marker"/>.</summary>
    static List<int> ProcessesWith(string marker)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                if (cmdline.Contains(marker) && stat[(stat.LastIndexOf(')') + 2)] != 'Z') found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    [Fact]
    public void KilledAgainAndAgainTheStudyLosesNothingAndRerunsTheInterruptedTrial()
    {
        using var tmp = new TempDir();
        var space = tmp.File("space.json", TinySpace);
        var db = Path.Combine(tmp.Path, "s.db");
        var study = "kill-" + Guid.NewGuid().ToString("N")[..8];
        const int trials = 4;
        var args = Args(db, study, space, trials, "--max-attempts", "50");
        var random = new Random(11);
        int kills = 0;
        for (int run = 0; run < 12; run++)
        {
            using var p = new CliProcess(args);
            if (kills < 4)
            {
                // Wait for a trial to be running in this process, then kill it (no handler runs) part-way through.
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                bool running = false;
                while (!p.HasExited && DateTime.UtcNow < deadline && !running)
                {
                    Thread.Sleep(100);
                    running = ProcessesWith(study).Count > 1;   // the worker and its trial child
                }
                if (running)
                {
                    Thread.Sleep(random.Next(100, 1200));
                    if (!p.HasExited)
                    {
                        p.KillParentOnly();
                        kills++;
                        // The orphaned trial process notices its worker is gone and ends itself (once it has started up).
                        var gone = DateTime.UtcNow + TimeSpan.FromSeconds(45);
                        while (ProcessesWith(study).Count > 0 && DateTime.UtcNow < gone) Thread.Sleep(100);
                        Assert.True(ProcessesWith(study).Count == 0, $"trial processes outlived their worker: {string.Join(", ", ProcessesWith(study))}");
                        continue;
                    }
                }
            }
            var code = p.Wait(Timeout);
            Assert.True(code == 0, p.Stdout + p.Stderr);
            break;
        }
        Assert.True(kills >= 3, $"only {kills} kills landed");

        using var storage = new SqliteStudyStorage(db);
        var info = storage.Find(study)!;
        var rows = storage.Trials(info.Id);
        Assert.Equal(Enumerable.Range(0, trials), rows.Select(t => t.Number));
        Assert.All(rows, t => Assert.True(t.State == TrialState.Complete, $"trial {t.Number}: {t.State} {t.Error}"));
        Assert.All(rows, t => Assert.True(t.Metric(Metrics.ValLoss) is > 0));
        Assert.True(rows.Sum(t => t.Attempt) > trials, $"no interrupted trial was re-run ({kills} kills)");
        // The same models a study never interrupted proposes: random search with the same seed, in order.
        var source = new CandidateSource(SearchSpaces.FromJson(info.Definition.Space));
        var seen = new HashSet<string>();
        foreach (var t in rows)
        {
            var expected = source.Random(AskContext.RandomFor(3, t.Number), seen);
            seen.Add(expected.Key);
            Assert.Equal(expected.Key, t.Key);
        }
    }

    [Fact]
    public void CandidatesThatRunOutOfMemoryFailAndTheSearchGoesOnThenShowAndExport()
    {
        using var tmp = new TempDir();
        var space = tmp.File("space.json", """
            { "space": "x-transformers",
              "model": { "type": "TransformerWrapper", "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "attn_dim_head": 8 } },
              "choices": { "attn_layers.dim": [16, 4096], "attn_layers.ff_glu": [false, true] } }
            """);
        var db = Path.Combine(tmp.Path, "s.db");
        var run = CliProcess.Run(Timeout, Args(db, "oom", space, 4, "--trial-memory", "600", "--objective", "val_loss", "--objective", "params"));
        Assert.True(run.Code == 0, run.Stdout + run.Stderr);
        Assert.Contains("failed: out of memory", run.Stdout);
        Assert.Contains("4/4 done", run.Stdout);

        using (var storage = new SqliteStudyStorage(db))
        {
            var rows = storage.Trials(storage.Find("oom")!.Id);
            Assert.Equal(2, rows.Count(t => t.State == TrialState.Failed && t.Error!.Contains("over the trial limit of 600 MiB")));
            Assert.Equal(2, rows.Count(t => t.State == TrialState.Complete));
        }

        var show = CliProcess.Run(Timeout, "search", "show", "--storage", db, "--study", "oom", "--plot", Path.Combine(tmp.Path, "front.png"));
        Assert.True(show.Code == 0, show.Stdout + show.Stderr);
        Assert.Contains("Pareto front", show.Stdout);
        Assert.True(new FileInfo(Path.Combine(tmp.Path, "front.png")).Length > 1000);

        var outDir = Path.Combine(tmp.Path, "export");
        var export = CliProcess.Run(Timeout, "search", "export", "--storage", db, "--study", "oom", "--out", outDir);
        Assert.True(export.Code == 0, export.Stdout + export.Stderr);
        // The exported model trains as it is.
        var config = ModelConfig.Load(Path.Combine(outDir, "best.json"));
        using var data = TrainingDataSpec.ForTask("reverse", new TransformerForge.Data.SyntheticTaskOptions(3, 4)).Open();
        using var trainer = Trainer.Create(config, data, new TrainOptions { Steps = 1, BatchSize = 2, EvalBatches = 1, SampleEvery = 0, WarmupSteps = 0 });
        Assert.Equal(1, trainer.Run().Step);
        var front = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "front.json")))!;
        Assert.NotEmpty(front["front"]!.AsArray());
        Assert.All(front["front"]!.AsArray(), f => Assert.True(File.Exists(Path.Combine(outDir, f!["config"]!.GetValue<string>()))));
    }

    [Fact]
    public void ATrialPastItsTimeLimitIsKilledAndFailed()
    {
        var evaluator = new ProcessTrialEvaluator("dotnet", [CliProcess.TforgeDll, "search", "trial"]);
        var request = new TrialRequest
        {
            Spec = JsonNode.Parse("""{ "type": "TransformerWrapper", "num_tokens": 8, "max_seq_len": 16, "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "heads": 2 } }""")!.AsObject(),
            Settings = new EvaluationSettings
            {
                Data = TrainingDataSpec.ForTask("copy", new TransformerForge.Data.SyntheticTaskOptions(3, 4)), Metrics = [Metrics.ValLoss],
                BudgetSteps = 10_000_000, TrialTimeoutSeconds = 3,
            },
            Plan = new TrialPlan(),
            PrimaryMetric = Metrics.ValLoss,
        };
        var trial = new TrialRecord { Number = 0, Spec = request.Spec, Key = "k", Genome = new(), Plan = request.Plan };
        var clock = Stopwatch.StartNew();
        var r = evaluator.Evaluate(trial, request, null, CancellationToken.None)!;
        Assert.Equal(TrialState.Failed, r.State);
        Assert.Contains("timed out", r.Error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void BadSearchesAreOneLineAndExitCode2()
    {
        using var tmp = new TempDir();
        var space = tmp.File("space.json", TinySpace);
        var db = Path.Combine(tmp.Path, "s.db");

        var missing = CliProcess.Run(Timeout, "search", "--storage", db, "--study", "nothing");
        Assert.True(missing.Code == 2, missing.Stdout + missing.Stderr);
        Assert.Contains("there is no study 'nothing'", missing.Stderr);
        Assert.DoesNotContain("   at ", missing.Stderr);

        var impossible = CliProcess.Run(Timeout, Args(db, "tight", space, 2, "--max-flops", "10"));
        Assert.True(impossible.Code == 2, impossible.Stdout + impossible.Stderr);
        Assert.Contains("cannot meet its constraints", impossible.Stderr);
        Assert.Contains("flops_per_token <= 10", impossible.Stderr);
        Assert.DoesNotContain("   at ", impossible.Stderr);

        var other = CliProcess.Run(Timeout, [.. Args(db, "tight", space, 2, "--max-flops", "10"), "--lr", "0.01"]);
        Assert.True(other.Code == 2, other.Stdout + other.Stderr);
        Assert.Contains("exists with other settings (evaluation)", other.Stderr);

        var foreign = CliProcess.Run(Timeout, [.. Args(db, "x", space, 2), "--population", "7"]);
        Assert.True(foreign.Code == 2, foreign.Stdout + foreign.Stderr);
        Assert.Contains("--population is an option of --algorithm evolution, not random", foreign.Stderr);

        var badSpace = CliProcess.Run(Timeout, Args(db, "b", tmp.File("bad.json", """{ "space": "x-transformers", "model": {}, "choices": { "attn_layers.dimm": [1] } }"""), 2));
        Assert.True(badSpace.Code == 2, badSpace.Stdout + badSpace.Stderr);
        Assert.Contains("bad.json", badSpace.Stderr);

        // A worker's device and heartbeat settings are checked before it touches the study.
        var device = CliProcess.Run(Timeout, "search", "worker", "--storage", db, "--study", "tight", "--device", "tpu");
        Assert.True(device.Code == 2, device.Stdout + device.Stderr);
        Assert.Contains("unknown device 'tpu'", device.Stderr);
        var beats = CliProcess.Run(Timeout, "search", "worker", "--storage", db, "--study", "tight", "--heartbeat", "30", "--grace", "45");
        Assert.True(beats.Code == 2, beats.Stdout + beats.Stderr);
        Assert.Contains("--grace (45 s) must be at least twice --heartbeat (30 s)", beats.Stderr);
        foreach (var p in new[] { device, beats }) Assert.DoesNotContain("   at ", p.Stderr);
    }
}
