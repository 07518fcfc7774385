using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using TransformerForge.Data;
using TransformerForge.Search;
using TransformerForge.Training;

namespace TransformerForge.Benchmarks;

/// <summary>One run of the search throughput benchmark: <see cref="Workers"/> workers on one fresh study.</summary>
public sealed record SearchBenchmarkRow(int Workers, int Trials, double Seconds, double CoordinationMsPerTrial, double RoundTripsPerTrial,
    double ProposeMsPerTrial, double EvaluateMsPerTrial, double MaxWorkerCoordinationMsPerTrial)
{
    public double TrialsPerSecond => Trials / Seconds;
}

/// <summary>
/// What coordinating through a study costs: random search with trivial trials (the objective is the parameter count,
/// evaluated in the worker's process, so a trial takes milliseconds) run by 1, 2, 4, ... workers at once on a fresh
/// study each. Each worker is a thread with its own storage connection (as separate processes would have), so the
/// database sees exactly what it would from separate machines. Reports trials per second over the study's span (first
/// claim to last result, in the storage's clock), and per trial: the time workers spent in the storage (claiming,
/// recording, reading the study), the requests sent to the database, the time proposing and evaluating.
/// </summary>
public static class SearchBenchmark
{
    /// <summary>A space with a few hundred small decoders (more than a run's trials, so random search never runs dry).</summary>
    public static JsonObject Space() => new()
    {
        ["space"] = "x-transformers",
        ["model"] = new JsonObject
        {
            ["type"] = "TransformerWrapper",
            ["attn_layers"] = new JsonObject { ["type"] = "Decoder", ["dim"] = 16, ["depth"] = 1, ["heads"] = 2, ["attn_dim_head"] = 8 },
        },
        ["choices"] = new JsonObject
        {
            ["attn_layers.dim"] = new JsonArray(16, 24, 32), ["attn_layers.depth"] = new JsonArray(1, 2, 3), ["attn_layers.heads"] = new JsonArray(1, 2),
            ["attn_layers.ff_mult"] = new JsonArray(1, 2, 3, 4), ["attn_layers.ff_glu"] = new JsonArray(false, true),
            ["attn_layers.ff_relu_squared"] = new JsonArray(false, true), ["attn_layers.attn_dconv"] = new JsonArray(false, true),
        },
    };

    public static IReadOnlyList<SearchBenchmarkRow> Run(string storage, IReadOnlyList<int> workerCounts, int trials, Action<string>? log = null)
    {
        var spaceFile = Path.Combine(Path.GetTempPath(), $"tforge-bench-space-{Guid.NewGuid():N}.json");
        File.WriteAllText(spaceFile, Space().ToJsonString());
        try
        {
            RunOne(storage, spaceFile, workerCounts.Max(), Math.Min(trials, 2 * workerCounts.Max()));   // warm-up (JIT, pools), not reported
            var rows = new List<SearchBenchmarkRow>();
            foreach (var workers in workerCounts)
            {
                var row = RunOne(storage, spaceFile, workers, trials);
                log?.Invoke(Format(row));
                rows.Add(row);
            }
            return rows;
        }
        finally
        {
            File.Delete(spaceFile);
        }
    }

    static SearchBenchmarkRow RunOne(string storageName, string spaceFile, int workers, int trials)
    {
        StudyInfo study;
        using (var storage = StudyStorages.Open(storageName))
        {
            study = SearchSetup.OpenOrCreate(storage, new SearchRequest
            {
                Study = $"bench-{workers}w-{Guid.NewGuid().ToString("N")[..8]}", SpacePath = spaceFile, Algorithm = RandomSearch.AlgorithmName,
                Objectives = [Metrics.Params], Trials = trials, Data = TrainingDataSpec.ForTask("reverse", new SyntheticTaskOptions(4, 8)), Seed = 1,
            });
        }
        var (candidates, settings) = SearchSetup.Prepare(study);
        var options = new WorkerOptions { PollInterval = TimeSpan.FromMilliseconds(50) };
        var stats = new WorkerStats[workers];
        using var start = new Barrier(workers);
        var threads = Enumerable.Range(0, workers).Select(w => new Thread(() =>
        {
            using var storage = StudyStorages.Open(storageName);
            var worker = new SearchWorker(storage, study, new InProcessTrialEvaluator(), candidates, settings, options, worker: $"bench/{w}");
            start.SignalAndWait();
            worker.Run();
            stats[w] = worker.Stats;
        }) { Name = $"bench worker {w}" }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        using var reader = StudyStorages.Open(storageName);
        var rows = reader.Trials(study.Id);
        if (rows.Count != trials || rows.Any(t => t.State != TrialState.Complete))
            throw new InvalidOperationException($"benchmark study {study.Name}: {rows.Count(t => t.State == TrialState.Complete)} of {trials} trials complete");
        var span = (rows.Max(t => t.FinishedAt!.Value) - rows.Min(t => t.StartedAt!.Value)).TotalSeconds;
        return new SearchBenchmarkRow(workers, trials, span,
            1000 * stats.Sum(s => s.StorageSeconds) / trials,
            (double)stats.Sum(s => s.RoundTrips) / trials,
            1000 * stats.Sum(s => s.ProposeSeconds) / trials,
            1000 * rows.Sum(t => t.Seconds ?? 0) / trials,
            stats.Where(s => s.Trials > 0).Max(s => 1000 * s.StorageSeconds / s.Trials));
    }

    public static string Header =>
        "| workers | trials | trials/s | coordination ms/trial | slowest worker's ms/trial | round trips/trial | propose ms/trial | evaluate ms/trial |\n" +
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";

    public static string Format(SearchBenchmarkRow r) => string.Create(CultureInfo.InvariantCulture,
        $"| {r.Workers} | {r.Trials} | {r.TrialsPerSecond:0.0} | {r.CoordinationMsPerTrial:0.0} | {r.MaxWorkerCoordinationMsPerTrial:0.0} | " +
        $"{r.RoundTripsPerTrial:0.00} | {r.ProposeMsPerTrial:0.0} | {r.EvaluateMsPerTrial:0.0} |");
}
