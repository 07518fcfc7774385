using System.CommandLine;
using System.Globalization;
using TransformerForge.Cli.Search;
using TransformerForge.Data;
using TransformerForge.Runtime;
using TransformerForge.Search;
using TransformerForge.Training;

namespace TransformerForge.Cli.Commands;

/// <summary>
/// <c>tforge search</c>: architecture search over a space file in a resumable study (SQLite by default, PostgreSQL for
/// workers on many machines). Run it again with the same <c>--study</c> to continue where it stopped; <c>search
/// worker</c> joins a study from any machine; <c>search show</c> and <c>search export</c> read a study; the hidden
/// <c>search trial</c> is the child process that evaluates one trial.
/// </summary>
public static class SearchCommand
{

    public static Command Create()
    {
        var study = new Option<string>("--study") { Description = "Study name: created with the other options, continued with the name alone.", Required = true };
        var storage = StorageOption();
        var space = new Option<string?>("--space") { Description = "Search space JSON (x-transformers options or a Transformer++ space)." };
        var algorithm = new Option<string?>("--algorithm") { Description = $"{string.Join(", ", SearchAlgorithms.Names)} (default evolution; pareto with several objectives)." };
        var objective = new Option<string[]>("--objective") { Description = $"Metric to optimise, repeatable; the first is primary (default val_loss). {string.Join(", ", Metrics.All.Select(m => m.Name))}.", AllowMultipleArgumentsPerToken = false };
        var trials = new Option<int?>("--trials") { Description = "Trials in the whole study (default 50); raise it to continue a finished study." };
        var data = new Option<string?>("--data") { Description = "Text corpus trials train on (a file or a folder of .txt)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = $"Tokenizer for --data: {string.Join(", ", Tokenizers.Kinds)} (default chars)." };
        var seqLen = new Option<int?>("--seq-len") { Description = "Tokens per training window for --data (default 128)." };
        var task = new Option<string?>("--task") { Description = $"Synthetic task trials train on: {string.Join(", ", SyntheticTasks.Names)}." };
        var taskLength = new Option<int?>("--task-length") { Description = "Task size (items, pairs or digits)." };
        var taskSymbols = new Option<int?>("--task-symbols") { Description = "Task alphabet size." };
        var budgetSteps = new Option<int?>("--budget-steps") { Description = "Training budget of a trial, in optimizer steps." };
        var budgetSeconds = new Option<double?>("--budget-seconds") { Description = "Training budget of a trial, in seconds (constant learning rate after warmup)." };
        var batch = new Option<int?>("--batch") { Description = "Sequences per batch (default 32)." };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default 1e-3)." };
        var warmup = new Option<int?>("--warmup") { Description = "Warmup steps (default 50, at most half a trial's steps)." };
        var weightDecay = new Option<double?>("--weight-decay") { Description = "AdamW weight decay (default 0.01)." };
        var gradClip = new Option<double?>("--grad-clip") { Description = "Gradient norm clip (default 1)." };
        var evalBatches = new Option<int?>("--eval-batches") { Description = "Validation batches per evaluation (default 8)." };
        var threads = new Option<int?>("--threads") { Description = "Torch threads per trial (default 1 for tasks, torch's default for text)." };
        var maxParams = new Option<double?>("--max-params") { Description = "Constraint: at most this many parameters (rejected before training)." };
        var maxFlops = new Option<double?>("--max-flops") { Description = "Constraint: at most this many forward FLOPs per token." };
        var maxLatency = new Option<double?>("--max-latency-ms") { Description = "Constraint: at most this forward latency of one sequence (ms, measured here)." };
        var hurdles = new Option<string?>("--hurdles") { Description = "Primer hurdles: fractions of the budget where a candidate must beat the running median, e.g. 0.25,0.5." };
        var hurdlePercentile = new Option<double?>("--hurdle-percentile") { Description = "Percentile a candidate must beat at a hurdle (default 50)." };
        var hurdleMin = new Option<int?>("--hurdle-min-trials") { Description = "Earlier trials needed before a hurdle applies (default 5)." };
        var population = new Option<int?>("--population") { Description = "Evolution: population (the last N finished trials; default 20)." };
        var sample = new Option<int?>("--sample-size") { Description = "Evolution: tournament size (default 5)." };
        var mutation = new Option<double?>("--mutation-prob") { Description = "Chance each choice is re-drawn in a mutation (default min(0.3, 1/choices))." };
        var crossover = new Option<double?>("--crossover-prob") { Description = "Evolution: chance a child is a crossover of two tournament winners (default 0)." };
        var initial = new Option<int?>("--initial-random") { Description = "Pareto: random trials before evolving the front (default 10)." };
        var eta = new Option<int?>("--eta") { Description = "Successive halving: keep the top 1/eta of a rung (default 3)." };
        var rungs = new Option<int?>("--rungs") { Description = "Successive halving: rungs (default 3; the lowest trains 1/eta^(rungs-1) of the budget)." };
        var timeout = new Option<double?>("--trial-timeout") { Description = "Kill and fail a trial running longer than this many seconds (default: no limit)." };
        var memory = new Option<double?>("--trial-memory") { Description = "Kill and fail a trial whose resident memory passes this many MiB (default: no limit)." };
        var attempts = new Option<int?>("--max-attempts") { Description = "Starts of a trial whose worker keeps vanishing before it is failed (default 3)." };
        var seed = new Option<int?>("--seed") { Description = "Study seed: proposals and training (default 0)." };
        var (heartbeat, grace, reconnect, verbose, device) = WorkerFlags();
        var plot = new Option<string?>("--plot") { Description = "Write the Pareto-front (or progress) plot to this PNG at the end." };

        var cmd = new Command("search", "Architecture search over a space file, in a study that survives anything (continue it by name).")
        {
            study, storage, space, algorithm, objective, trials, data, tokenizer, seqLen, task, taskLength, taskSymbols, budgetSteps, budgetSeconds,
            batch, lr, warmup, weightDecay, gradClip, evalBatches, threads, maxParams, maxFlops, maxLatency, hurdles, hurdlePercentile, hurdleMin,
            population, sample, mutation, crossover, initial, eta, rungs, timeout, memory, attempts, seed, heartbeat, grace, reconnect, verbose, device, plot,
        };
        cmd.SetAction(r =>
        {
            var dataSpec = DataSpec(r.GetValue(data), r.GetValue(tokenizer), r.GetValue(seqLen), r.GetValue(task), r.GetValue(taskLength), r.GetValue(taskSymbols));
            var request = new SearchRequest
            {
                Study = r.GetValue(study)!,
                SpacePath = r.GetValue(space),
                Algorithm = r.GetValue(algorithm),
                Objectives = r.GetValue(objective) ?? [],
                Trials = r.GetValue(trials),
                Data = dataSpec,
                BudgetSteps = r.GetValue(budgetSteps),
                BudgetSeconds = r.GetValue(budgetSeconds),
                BatchSize = r.GetValue(batch),
                LearningRate = r.GetValue(lr),
                WarmupSteps = r.GetValue(warmup),
                WeightDecay = r.GetValue(weightDecay),
                GradClip = r.GetValue(gradClip),
                EvalBatches = r.GetValue(evalBatches),
                Threads = r.GetValue(threads),
                MaxParams = r.GetValue(maxParams),
                MaxFlops = r.GetValue(maxFlops),
                MaxLatencyMs = r.GetValue(maxLatency),
                Hurdles = r.GetValue(hurdles) is { } h ? Fractions(h) : null,
                HurdlePercentile = r.GetValue(hurdlePercentile),
                HurdleMinTrials = r.GetValue(hurdleMin),
                Population = r.GetValue(population),
                SampleSize = r.GetValue(sample),
                MutationProbability = r.GetValue(mutation),
                CrossoverProbability = r.GetValue(crossover),
                InitialRandom = r.GetValue(initial),
                Eta = r.GetValue(eta),
                Rungs = r.GetValue(rungs),
                TrialTimeoutSeconds = r.GetValue(timeout),
                TrialMemoryMiB = r.GetValue(memory),
                MaxAttempts = r.GetValue(attempts),
                Seed = r.GetValue(seed),
            };
            var worker = Options(r, heartbeat, grace, device);
            return Run(r.GetValue(storage), request, worker, Seconds(r.GetValue(reconnect), "--reconnect"), r.GetValue(verbose), r.GetValue(plot));
        });
        cmd.Subcommands.Add(CreateWorker());
        cmd.Subcommands.Add(SearchShowCommand.CreateShow());
        cmd.Subcommands.Add(SearchShowCommand.CreateExport());
        cmd.Subcommands.Add(CreateTrial());
        return cmd;
    }

    // No default value here: System.CommandLine prints defaults in --help, and $TFORGE_STORAGE may hold a password.
    public static Option<string?> StorageOption() => new("--storage")
    {
        Description = $"Where the study lives: a SQLite file, or postgresql://USER@HOST[:PORT]/DB[?sslmode=verify-full&...] for workers on many " +
                      $"machines; env:NAME or file:PATH read it from an environment variable or a file (keep passwords off the command line). " +
                      $"Default: ${StudyStorages.EnvironmentVariable}, else {StudyStorages.DefaultPath}.",
    };

    static (Option<double> Heartbeat, Option<double> Grace, Option<double> Reconnect, Option<bool> Verbose, Option<string> Device) WorkerFlags() =>
    (
        new Option<double>("--heartbeat") { Description = "Seconds between heartbeats of a running trial.", DefaultValueFactory = _ => 10 },
        new Option<double>("--grace") { Description = "Seconds without a heartbeat after which a trial is re-queued (at least twice --heartbeat).", DefaultValueFactory = _ => 60 },
        new Option<double>("--reconnect") { Description = "Seconds to keep retrying while the study's database is unreachable (restart, failover).", DefaultValueFactory = _ => 600 },
        new Option<bool>("--verbose") { Description = "Print each trial's training progress." },
        new Option<string>("--device") { Description = "Where this worker's trials train: cpu, cuda or cuda:N (one worker per GPU; not part of the study).", DefaultValueFactory = _ => "cpu" }
    );

    /// <summary>This worker's options; the device is checked now, so a worker without its GPU claims nothing.</summary>
    static WorkerOptions Options(ParseResult r, Option<double> heartbeat, Option<double> grace, Option<string> device)
    {
        var options = new WorkerOptions
        {
            HeartbeatInterval = Seconds(r.GetValue(heartbeat), "--heartbeat"),
            Grace = Seconds(r.GetValue(grace), "--grace"),
            Device = r.GetValue(device)!,
        };
        options.Validate();
        TorchRuntime.SelectDevice(options.Device);
        return options;
    }

    /// <summary><c>tforge search worker</c>: one more worker for an existing study, from any machine that reaches its storage.</summary>
    static Command CreateWorker()
    {
        var study = new Option<string>("--study") { Description = "The study to work on (created by tforge search, on any machine).", Required = true };
        var storage = StorageOption();
        var (heartbeat, grace, reconnect, verbose, device) = WorkerFlags();
        var cmd = new Command("worker", "Join a study as one more worker: claim trials, run them, record results, until the study has all its trials.")
        {
            study, storage, heartbeat, grace, reconnect, verbose, device,
        };
        cmd.SetAction(r =>
        {
            var options = Options(r, heartbeat, grace, device);
            return Run(r.GetValue(storage), new SearchRequest { Study = r.GetValue(study)! }, options, Seconds(r.GetValue(reconnect), "--reconnect"),
                r.GetValue(verbose), plot: null, join: true);
        });
        return cmd;
    }

    /// <summary>Opens a <c>--storage</c> value; a database that goes away is reported on standard error while it is retried.</summary>
    public static IStudyStorage OpenStorage(string? storage, bool mustExist = false, TimeSpan? reconnect = null) =>
        StudyStorages.Open(storage, mustExist, reconnect, message => Console.Error.WriteLine($"tforge: {message}"));

    static int Run(string? storageValue, SearchRequest request, WorkerOptions workerOptions, TimeSpan reconnect, bool verbose, string? plot, bool join = false)
    {
        using var storage = OpenStorage(storageValue, reconnect: reconnect);
        if (join && storage.Find(request.Study) is null)
            throw new SearchException($"there is no study '{request.Study}' in {StudyStorages.Describe(storage)}; create it with tforge search --study {request.Study} --space ... (from any machine)");
        var study = SearchSetup.OpenOrCreate(storage, request);
        var (candidates, settings) = SearchSetup.Prepare(study);
        var (file, args) = SelfInvocation();
        var evaluator = new ProcessTrialEvaluator(file, [.. args, "search", "trial", "--study", study.Name]);
        var console = new SearchConsole(study, verbose);
        var worker = new SearchWorker(storage, study, evaluator, candidates, settings, workerOptions, console);
        console.Start(storage.Trials(study.Id), StudyStorages.Describe(storage));

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (cancel.IsCancellationRequested) return;   // a second Ctrl+C ends the process
            e.Cancel = true;
            cancel.Cancel();
            Console.Error.WriteLine("stopping: the running trial goes back to the queue; run the same command to continue");
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var why = worker.Run(cancel.Token);
            var trialsNow = storage.Trials(study.Id);
            console.Finish(why, trialsNow);
            Console.WriteLine($"worker {worker.Worker}: {worker.Stats.Describe()}");
            if (plot is not null && StudyPlot.Write(study.Definition, trialsNow, plot, null, null) is { } png) Console.WriteLine($"plot: {png}");
            return cancel.IsCancellationRequested ? 130 : 0;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>How to start this same tforge (the apphost, or <c>dotnet tforge.dll</c>).</summary>
    static (string File, string[] Args) SelfInvocation()
    {
        var process = Environment.ProcessPath ?? "dotnet";
        var dll = typeof(SearchCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? (process, [dll]) : (process, []);
    }

    static Command CreateTrial()
    {
        // --study and --trial only label the process for ps; the request on standard input says everything.
        var study = new Option<string?>("--study") { Description = "The study (a label)." };
        var trial = new Option<int?>("--trial") { Description = "The trial number (a label)." };
        var cmd = new Command("trial", "Evaluate one trial (the child process of a search: request on standard input, result on standard output).") { study, trial };
        cmd.Hidden = true;
        cmd.SetAction(_ => ProcessTrialEvaluator.RunChild(Console.In, Console.Out));
        return cmd;
    }

    static TrainingDataSpec? DataSpec(string? data, string? tokenizer, int? seqLen, string? task, int? taskLength, int? taskSymbols)
    {
        if (data is not null && task is not null) throw new ArgumentException("give --data or --task, not both");
        if (data is not null)
        {
            if (taskLength is not null || taskSymbols is not null) throw new ArgumentException("--task-length and --task-symbols apply to --task only");
            if (File.Exists(data) && new FileInfo(data).Length == 0) throw new InvalidDataException($"data file '{data}' is empty");
            if (!File.Exists(data) && !Directory.Exists(data)) throw new FileNotFoundException($"data file or folder '{data}' does not exist", data);
            if (seqLen is < 1) throw new ArgumentException($"--seq-len must be a positive integer, got {seqLen}");
            return TrainingDataSpec.ForText(data, tokenizer ?? "chars", seqLen ?? 128);
        }
        if (tokenizer is not null || seqLen is not null) throw new ArgumentException("--tokenizer and --seq-len apply to --data only");
        if (task is null) return taskLength is null && taskSymbols is null ? null : throw new ArgumentException("--task-length and --task-symbols need --task");
        SyntheticTasks.Create(task, new SyntheticTaskOptions(taskLength, taskSymbols));   // a clear error for a bad name or size, now
        return TrainingDataSpec.ForTask(task, new SyntheticTaskOptions(taskLength, taskSymbols));
    }

    static IReadOnlyList<double> Fractions(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
            : throw new ArgumentException($"--hurdles: '{s}' is not a number (give fractions of the budget, e.g. 0.25,0.5)")).ToList();

    static TimeSpan Seconds(double value, string option) =>
        value > 0 && double.IsFinite(value) ? TimeSpan.FromSeconds(value) : throw new ArgumentException($"{option} must be a positive number of seconds, got {value}");
}
