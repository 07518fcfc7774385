using System.CommandLine;
using TransformerForge.Benchmarks;
using TransformerForge.Config;
using TransformerForge.Training;
using TransformerForge.Runtime;

namespace TransformerForge.Cli.Commands;

/// <summary><c>tforge bench ...</c>: benchmarks that print figures and ratios.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Speed benchmarks (figures and ratios).");
        bench.Subcommands.Add(Train());
        bench.Subcommands.Add(Generate());
        bench.Subcommands.Add(Feedback());
        bench.Subcommands.Add(Conv());
        bench.Subcommands.Add(Tokenize());
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

    /// <summary>Options naming a model: a JSON file, or a preset sized by --dim/--depth/--heads/--vocab.</summary>
    sealed class ModelOptions
    {
        public readonly Option<string?> Config = new("--config") { Description = "Model JSON (a decoder TransformerWrapper, a FeedbackTransformer, a TransformerPlusPlus or an Archai architecture file); excludes --preset and sizes." };
        public readonly Option<string?> Preset = new("--preset") { Description = $"Built-in decoder: {string.Join(", ", ModelPresets.Names)} (default vanilla)." };
        public readonly Option<int?> Dim = new("--dim") { Description = "Preset width (default 256)." };
        public readonly Option<int?> Depth = new("--depth") { Description = "Preset depth (default 4)." };
        public readonly Option<int?> Heads = new("--heads") { Description = "Preset heads; head size = dim / heads (default 4)." };
        public readonly Option<int?> Vocab = new("--vocab") { Description = "Preset vocabulary (default 256)." };

        public IEnumerable<Option> All => new Option[] { Config, Preset, Dim, Depth, Heads, Vocab };

        /// <summary>The model and a short name for result lines.</summary>
        public (ModelConfig Config, string Name) Resolve(ParseResult r, int maxSeqLen)
        {
            if (r.GetValue(Config) is { } path)
            {
                if (r.GetValue(Preset) is not null || r.GetValue(Dim) is not null || r.GetValue(Depth) is not null || r.GetValue(Heads) is not null || r.GetValue(Vocab) is not null)
                    throw new ArgumentException("--config excludes --preset, --dim, --depth, --heads and --vocab");
                return (ModelConfig.Load(path), Path.GetFileNameWithoutExtension(path));
            }
            var preset = r.GetValue(Preset) ?? ModelPresets.Vanilla;
            int dim = r.GetValue(Dim) ?? 256, depth = r.GetValue(Depth) ?? 4, heads = r.GetValue(Heads) ?? 4;
            var config = ModelPresets.Create(preset, r.GetValue(Vocab) ?? 256, maxSeqLen, dim, depth, heads);
            return (config, $"{preset}-d{dim}-l{depth}-h{heads}");
        }
    }

    static Command Train()
    {
        var model = new ModelOptions();
        var batch = new Option<int>("--batch") { Description = "Sequences per step.", DefaultValueFactory = _ => 8 };
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence.", DefaultValueFactory = _ => 256 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first.", DefaultValueFactory = _ => 3 };
        var steps = new Option<int>("--steps") { Description = "Timed steps (the median is reported).", DefaultValueFactory = _ => 10 };
        var precision = new Option<string>("--precision") { Description = "fp32, bf16 or fp16 (mixed precision over float32 master weights).", DefaultValueFactory = _ => Precision.Fp32 };
        var perTensor = new Option<bool>("--per-tensor-optimizer") { Description = "AdamW with one set of operations per tensor instead of the flat buffers (to measure that lever)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads (default: libtorch's choice)." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };
        var quiet = new Option<bool>("--quiet") { Description = "Only the summary and the RESULT line, no line per step." };
        var rssEvery = new Option<int>("--rss-every") { Description = "Print resident memory every N steps (and only then a step line): memory over a long run." };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("train", "Training step time (median; forward / backward / optimizer), tokens/s and peak memory of any decoder.")
        {
            batch, seq, warmup, steps, precision, perTensor, threads, seed, quiet, rssEvery, device,
        };
        foreach (var option in model.All) cmd.Options.Add(option);
        cmd.SetAction(r =>
        {
            TorchRuntime.SelectDevice(r.GetValue(device)!);
            if (r.GetValue(threads) is { } n) ThreadPolicy.Fix(n);
            var (config, name) = model.Resolve(r, r.GetValue(seq));
            var options = new TrainingBenchmarkOptions
            {
                Model = config, Batch = r.GetValue(batch), SeqLen = r.GetValue(seq), WarmupSteps = r.GetValue(warmup), Steps = r.GetValue(steps),
                Device = r.GetValue(device)!, Precision = r.GetValue(precision)!, FlatOptimizer = !r.GetValue(perTensor), Seed = r.GetValue(seed),
                RssEvery = r.GetValue(rssEvery),
            };
            Console.WriteLine($"load average before: {LoadAverage()}");
            var result = TrainingBenchmark.Run(options, name, r.GetValue(quiet) ? null : Console.WriteLine);
            Console.WriteLine(result.Describe());
            Console.WriteLine($"load average after: {LoadAverage()}");
            Console.WriteLine(result.ResultLine());
            return 0;
        });
        return cmd;
    }

    static Command Generate()
    {
        var model = new ModelOptions();
        var tokens = new Option<int>("--tokens") { Description = "New tokens to generate.", DefaultValueFactory = _ => 512 };
        var prompt = new Option<int>("--prompt") { Description = "Prompt length (random tokens).", DefaultValueFactory = _ => 16 };
        var repeats = new Option<int>("--repeats") { Description = "Timed generations per path (the median is reported).", DefaultValueFactory = _ => 3 };
        var positions = new Option<string>("--positions") { Description = "Without --config/--preset: the default decoder's positions, rotary, alibi, t5 or absolute.", DefaultValueFactory = _ => "rotary" };
        var cacheOnly = new Option<bool>("--cache-only") { Description = "Time only KV-cached generation (not recomputing the window)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads (default: libtorch's choice)." };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("generate", "Greedy batch-1 generation: KV-cached vs. recomputed, median of repeats. Default model: decoder dim 256, depth 4, 8 heads.")
        {
            tokens, prompt, repeats, positions, cacheOnly, threads, device,
        };
        foreach (var option in model.All) cmd.Options.Add(option);
        cmd.SetAction(r =>
        {
            TorchRuntime.SelectDevice(r.GetValue(device)!);
            if (r.GetValue(threads) is { } n) ThreadPolicy.Fix(n);
            int newTokens = r.GetValue(tokens);
            bool named = r.GetValue(model.Config) is not null || r.GetValue(model.Preset) is not null;
            var (config, name) = named
                ? model.Resolve(r, r.GetValue(prompt) + newTokens)
                : (GenerationBenchmarkOptions.DefaultModel(newTokens, r.GetValue(model.Dim) ?? 256, r.GetValue(model.Depth) ?? 4,
                    r.GetValue(model.Heads) ?? 8, r.GetValue(positions)!), $"decoder-{r.GetValue(positions)}");
            var options = new GenerationBenchmarkOptions
            {
                Model = config, NewTokens = newTokens, PromptLength = r.GetValue(prompt), Repeats = r.GetValue(repeats),
                Recompute = !r.GetValue(cacheOnly), Device = r.GetValue(device)!,
            };
            var dev = TorchRuntime.SelectDevice(options.Device);
            Console.WriteLine($"{name}, prompt {options.PromptLength}, {newTokens} new tokens, greedy, batch 1, {dev}, " +
                              $"{TorchSharp.torch.get_num_threads()} threads, load average {LoadAverage()}");
            var rows = GenerationBenchmark.Run(options, Console.WriteLine);
            if (rows.Count == 2) Console.WriteLine($"speed-up of the cache: {rows[0].TokensPerSecond / rows[1].TokensPerSecond:F1}x");
            Console.WriteLine($"load average after: {LoadAverage()}");
            foreach (var row in rows) Console.WriteLine(row.ResultLine("tforge", name, dev.ToString(), newTokens, options.Repeats));
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
            if (r.GetValue(threads) is { } n) ThreadPolicy.Fix(n);
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

    static Command Conv()
    {
        var lengths = new Option<long[]>("--lengths") { Description = "Sequence lengths.", DefaultValueFactory = _ => [1024, 2048, 4096], AllowMultipleArgumentsPerToken = true };
        var taps = new Option<long[]>("--taps") { Description = "Kernel taps (those up to each length; SGConv's kernels reach the whole sequence).", DefaultValueFactory = _ => [16, 32, 64, 128, 256, 512, 1024, 2048, 4096], AllowMultipleArgumentsPerToken = true };
        var batch = new Option<int>("--batch") { Description = "Sequences per input [default: 4].", DefaultValueFactory = _ => 4 };
        var channels = new Option<int>("--channels") { Description = "Channels (each with its own kernel) [default: 128].", DefaultValueFactory = _ => 128 };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs of each (median reported).", DefaultValueFactory = _ => 7 };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads [default: libtorch's choice]." };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("conv", "SGConv's long causal convolution: direct sum vs. FFT (interleaved), and which one Transformer++ picks.")
        {
            lengths, taps, batch, channels, repeats, threads, device,
        };
        cmd.SetAction(r =>
        {
            var dev = TorchRuntime.SelectDevice(r.GetValue(device)!);
            if (r.GetValue(threads) is { } n) ThreadPolicy.Fix(n);
            Console.WriteLine($"input [{r.GetValue(batch)}, {r.GetValue(channels)}, length], kernel [{r.GetValue(channels)}, taps], float32, forward; " +
                              $"median of {r.GetValue(repeats)} interleaved runs; {dev}, {TorchSharp.torch.get_num_threads()} threads, load average {LoadAverage()}");
            var rows = ConvolutionBenchmark.Run(dev, r.GetValue(lengths)!, r.GetValue(taps)!, r.GetValue(batch), r.GetValue(channels), r.GetValue(repeats), Console.WriteLine);
            foreach (var length in rows.Select(x => x.Length).Distinct())
            {
                var faster = rows.Where(x => x.Length == length && x.FftSpeedup > 1).Select(x => x.Taps).DefaultIfEmpty(-1).Min();
                Console.WriteLine(faster < 0 ? $"length {length}: the direct sum was faster at every kernel size measured"
                    : $"length {length}: the FFT is faster from {faster} taps on (of those measured)");
            }
            Console.WriteLine($"load average after: {LoadAverage()}");
            return 0;
        });
        return cmd;
    }

    static Command Tokenize()
    {
        var encoding = new Option<string>("--encoding") { Description = "cl100k or o200k.", DefaultValueFactory = _ => "cl100k" };
        var chars = new Option<int>("--chars") { Description = "Characters of each text.", DefaultValueFactory = _ => 5_000_000 };
        var before = new Option<int>("--before-chars") { Description = "Also time Microsoft.ML.Tokenizers alone on this many characters of the no-space text (slow: about 160 s per million), 0 = skip.", DefaultValueFactory = _ => 0 };
        var corpus = new Option<string?>("--corpus") { Description = "Prose to repeat (e.g. tinyshakespeare.txt) [default: generated words]." };
        var cmd = new Command("tokenize", "BPE on prose vs. text without spaces (linear after cutting long runs).") { encoding, chars, before, corpus };
        cmd.SetAction(r =>
        {
            if (r.GetValue(chars) < 1 || r.GetValue(before) < 0) throw new ArgumentException("--chars must be positive and --before-chars not negative");
            TokenizerBenchmark.Run(r.GetValue(encoding)!, r.GetValue(chars), r.GetValue(before), r.GetValue(corpus), log: Console.WriteLine);
            Console.WriteLine($"load average: {LoadAverage()}");
            return 0;
        });
        return cmd;
    }

    /// <summary>The 1, 5 and 15 minute load averages (Linux), since timings on a shared machine depend on them.</summary>
    static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
