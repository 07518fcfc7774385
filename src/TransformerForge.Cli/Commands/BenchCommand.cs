using System.CommandLine;
using TransformerForge.Benchmarks;
using TransformerForge.Runtime;

namespace TransformerForge.Cli.Commands;

/// <summary><c>tforge bench ...</c>: benchmarks that print figures and ratios.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Speed benchmarks (figures and ratios).");
        bench.Subcommands.Add(Generate());
        bench.Subcommands.Add(Feedback());
        bench.Subcommands.Add(Search());
        return bench;
    }

    static Command Search()
    {
        var storage = SearchCommand.StorageOption();
        var workers = new Option<int[]>("--workers") { Description = "Worker counts to run, one fresh study each.", DefaultValueFactory = _ => [1, 2, 4, 8], AllowMultipleArgumentsPerToken = true };
        var trials = new Option<int>("--trials") { Description = "Trials per study.", DefaultValueFactory = _ => 200 };
        var cmd = new Command("search", "Coordination cost of a study: trivial trials (objective = parameters) with 1, 2, 4, 8 workers; trials/s and database round trips per trial.")
        {
            storage, workers, trials,
        };
        cmd.SetAction(r =>
        {
            var target = r.GetValue(storage);
            using (var probe = SearchCommand.OpenStorage(target)) Console.WriteLine($"storage {TransformerForge.Search.StudyStorages.Describe(probe)}, " +
                $"{r.GetValue(trials)} trials per run, random search, objective params (evaluated in the worker's process)");
            Console.WriteLine($"{Environment.ProcessorCount} logical CPUs, load average {LoadAverage()}");
            Console.WriteLine(SearchBenchmark.Header);
            SearchBenchmark.Run(TransformerForge.Search.StudyStorages.Resolve(target), r.GetValue(workers)!, r.GetValue(trials), Console.WriteLine);
            Console.WriteLine($"load average after: {LoadAverage()}");
            return 0;
        });
        return cmd;
    }

    static Command Generate()
    {
        var tokens = new Option<int>("--tokens") { Description = "New tokens to generate.", DefaultValueFactory = _ => 512 };
        var dim = new Option<int>("--dim") { DefaultValueFactory = _ => 256 };
        var depth = new Option<int>("--depth") { DefaultValueFactory = _ => 4 };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => 8 };
        var positions = new Option<string>("--positions") { Description = "rotary, alibi, t5 or absolute", DefaultValueFactory = _ => "rotary" };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("generate", "KV-cached vs. recomputed generation of the same decoder.") { tokens, dim, depth, heads, positions, device };
        cmd.SetAction(r =>
        {
            var dev = TorchRuntime.SelectDevice(r.GetValue(device)!);
            Console.WriteLine($"decoder dim {r.GetValue(dim)} depth {r.GetValue(depth)} heads {r.GetValue(heads)}, {r.GetValue(positions)} positions, " +
                              $"prompt 16, {r.GetValue(tokens)} new tokens, greedy, {dev}, {TorchSharp.torch.get_num_threads()} threads");
            var rows = GenerationBenchmark.Run(dev, r.GetValue(tokens), r.GetValue(dim), r.GetValue(depth), r.GetValue(heads), r.GetValue(positions)!, Console.WriteLine);
            Console.WriteLine($"speed-up of the cache: {rows[0].TokensPerSecond / rows[1].TokensPerSecond:F1}x");
            return rows.All(x => x.Note == "") ? 0 : 1;
        });
        return cmd;
    }

    static Command Feedback()
    {
        var defaults = new FeedbackBenchmarkOptions();
        var layers = new Option<int[]>("--layers")
        {
            Description = "Depths to benchmark; several (--layers 2 4 8) give a table per depth.",
            DefaultValueFactory = _ => [defaults.Depth], AllowMultipleArgumentsPerToken = true,
        };
        var seq = new Option<int>("--seq") { Description = "Training sequence length.", DefaultValueFactory = _ => defaults.SeqLen };
        var batch = new Option<int>("--batch") { Description = "Training batch size.", DefaultValueFactory = _ => defaults.Batch };
        var warmup = new Option<int>("--warmup") { Description = "Untimed training steps first.", DefaultValueFactory = _ => defaults.WarmupSteps };
        var steps = new Option<int>("--steps") { Description = "Timed training steps (median reported).", DefaultValueFactory = _ => defaults.Steps };
        var prompt = new Option<int>("--prompt") { Description = "Generation prompt length.", DefaultValueFactory = _ => defaults.PromptLength };
        var tokens = new Option<int>("--tokens") { Description = "New tokens per generation.", DefaultValueFactory = _ => defaults.NewTokens };
        var repeats = new Option<int>("--repeats") { Description = "Timed generations (median reported).", DefaultValueFactory = _ => defaults.GenerationRepeats };
        var dim = new Option<int>("--dim") { DefaultValueFactory = _ => defaults.Dim };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => defaults.Heads };
        var ff = new Option<int>("--ff") { Description = "Feed-forward hidden width.", DefaultValueFactory = _ => defaults.FfInnerDim };
        var positions = new Option<string>("--positions") { Description = "The decoder's positions: rotary or absolute", DefaultValueFactory = _ => defaults.Positions };
        var maxMemory = new Option<int?>("--max-memory") { Description = "Relative positions the feedback models learn (default: what the run needs; labml: 4096)." };
        var models = new Option<string[]>("--models")
        {
            Description = "Subset of: decoder feedback feedback-kv.",
            DefaultValueFactory = _ => defaults.Models.Select(FeedbackBenchmark.NameOf).ToArray(), AllowMultipleArgumentsPerToken = true,
        };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads (default: libtorch's choice)." };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("feedback", "Feedback Transformer (original and shared key/value) vs. a Decoder of the same size: training tokens/s, generation tokens/s, training memory.")
        {
            layers, seq, batch, warmup, steps, prompt, tokens, repeats, dim, heads, ff, positions, maxMemory, models, threads, device,
        };
        cmd.SetAction(r =>
        {
            var dev = TorchRuntime.SelectDevice(r.GetValue(device)!);
            if (r.GetValue(threads) is { } n) TorchSharp.torch.set_num_threads(n);
            var options = new FeedbackBenchmarkOptions
            {
                SeqLen = r.GetValue(seq), Batch = r.GetValue(batch), WarmupSteps = r.GetValue(warmup), Steps = r.GetValue(steps),
                PromptLength = r.GetValue(prompt), NewTokens = r.GetValue(tokens), GenerationRepeats = r.GetValue(repeats),
                Dim = r.GetValue(dim), Heads = r.GetValue(heads), FfInnerDim = r.GetValue(ff), Positions = r.GetValue(positions)!,
                MaxMemory = r.GetValue(maxMemory), Models = r.GetValue(models)!.Select(FeedbackBenchmark.Parse).ToArray(),
            };
            Console.WriteLine($"vocabulary {options.Vocabulary}, dim {options.Dim}, heads {options.Heads}, feed-forward width {options.FfInnerDim}; " +
                              $"training: batch {options.Batch} x seq {options.SeqLen}, {options.WarmupSteps} warm-up + {options.Steps} timed steps, AdamW; " +
                              $"generation: greedy, cached, batch 1, prompt {options.PromptLength}, {options.NewTokens} new tokens, median of {options.GenerationRepeats}; " +
                              $"decoder positions {options.Positions}; feedback max memory {options.MaxMemory ?? options.NeededMemory}");
            Console.WriteLine($"{dev}, {TorchSharp.torch.get_num_threads()} threads, {Environment.ProcessorCount} logical CPUs, load average {LoadAverage()}");
            var rows = new List<FeedbackBenchmarkRow>();
            foreach (var depth in r.GetValue(layers)!)
                rows.AddRange(FeedbackBenchmark.Run(dev, options with { Depth = depth }, Console.WriteLine));
            Console.WriteLine();
            foreach (var line in FeedbackBenchmark.Table(rows)) Console.WriteLine(line);
            Console.WriteLine($"load average after: {LoadAverage()}");
            return 0;
        });
        return cmd;
    }

    /// <summary>The 1, 5 and 15 minute load averages (Linux), since timings on a shared machine depend on them.</summary>
    static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
