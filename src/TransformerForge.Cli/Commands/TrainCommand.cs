using System.CommandLine;
using TorchSharp;
using TransformerForge.Cli.Training;
using TransformerForge.Config;
using TransformerForge.Data;
using TransformerForge.Runtime;
using TransformerForge.Training;

namespace TransformerForge.Cli.Commands;

/// <summary>
/// <c>tforge train</c>: trains a model on a text corpus or a synthetic task, with progress, metrics.jsonl, a loss
/// plot and checkpoints. With no arguments it runs the built-in demo: a small Primer-EZ-style decoder learns to
/// reverse sequences and stops once 95% of held-out problems come out exactly right.
/// </summary>
public static class TrainCommand
{
    /// <summary>The demo job: what <c>tforge train</c> with no arguments trains (tuned to pass 95% on 2 CPU cores well within 3 minutes).</summary>
    public static class Demo
    {
        public const string Task = SyntheticTasks.Reverse;
        public const string Preset = ModelPresets.PrimerEz;
        public const int Dim = 64, Depth = 2, Heads = 4;
        public const int Steps = 1500, Batch = 64, Warmup = 50, EvalEvery = 25, SampleEvery = 50;
        public const double LearningRate = 3e-3, TargetExactMatch = 0.95;
    }

    /// <summary>Defaults for text corpora.</summary>
    static class TextDefaults
    {
        public const int Dim = 128, Depth = 4, Heads = 4, SeqLen = 128;
        public const int Steps = 2000, Batch = 32, Warmup = 100, EvalEvery = 200, SampleEvery = 500;
        public const double LearningRate = 1e-3;
    }

    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "Model JSON: an x-transformers constructor as JSON, a FeedbackTransformer or TransformerPlusPlus, or an Archai Transformer++ ArchConfig file; excludes --preset/--dim/--depth/--heads." };
        var preset = new Option<string?>("--preset") { Description = $"Built-in model: {string.Join(", ", ModelPresets.Names)} [default: {Demo.Preset}]." };
        var data = new Option<string?>("--data") { Description = "Text corpus: a file, or a folder of .txt files. With --resume: where the run's corpus is now (accepted when its content is the same)." };
        var task = new Option<string?>("--task") { Description = $"Synthetic task: {string.Join(", ", SyntheticTasks.Names)} [default: {Demo.Task} when no --data]." };
        var taskLength = new Option<int?>("--task-length") { Description = "Task size: items to copy/reverse/sort, pairs to recall, digits to add [default: the task's own, 10 for reverse]." };
        var taskSymbols = new Option<int?>("--task-symbols") { Description = "Task alphabet size (or number base for addition) [default: the task's own]." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = $"Tokenizer for --data: {string.Join(", ", Tokenizers.Kinds)} [default: bytes]." };
        var dim = new Option<int?>("--dim") { Description = $"Model width [default: {TextDefaults.Dim} for --data, {Demo.Dim} for tasks]." };
        var depth = new Option<int?>("--depth") { Description = $"Number of layers (attention + feed-forward blocks) [default: {TextDefaults.Depth} for --data, {Demo.Depth} for tasks]." };
        var heads = new Option<int?>("--heads") { Description = $"Attention heads (head size = dim / heads) [default: {TextDefaults.Heads} for --data, {Demo.Heads} for tasks]." };
        var seqLen = new Option<int?>("--seq-len") { Description = $"Tokens per training window for --data [default: the config's max_seq_len, else {TextDefaults.SeqLen}]." };
        var steps = new Option<int?>("--steps") { Description = $"Optimizer steps, the run's total; with --resume it may change [default: {TextDefaults.Steps} for --data, {Demo.Steps} for tasks]." };
        var batch = new Option<int?>("--batch") { Description = $"Sequences per micro-batch [default: {TextDefaults.Batch} for --data, {Demo.Batch} for tasks]." };
        var gradAccum = new Option<int?>("--grad-accum") { Description = "Micro-batches per optimizer step [default: 1]." };
        var lr = new Option<double?>("--lr") { Description = $"Peak learning rate [default: {TextDefaults.LearningRate} for --data, {Demo.LearningRate} for tasks]." };
        var warmup = new Option<int?>("--warmup") { Description = $"Linear warmup steps [default: {TextDefaults.Warmup} for --data, {Demo.Warmup} for tasks]." };
        var weightDecay = new Option<double?>("--weight-decay") { Description = $"AdamW weight decay on matrices [default: {new TrainOptions().WeightDecay}]." };
        var gradClip = new Option<double?>("--grad-clip") { Description = $"Gradient norm clip, 0 = off [default: {new TrainOptions().GradClip}]." };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N [default: cpu; with --resume, the run's]." };
        var seed = new Option<int?>("--seed") { Description = $"Seed of initialisation, batches and dropout [default: {new TrainOptions().Seed}]." };
        var outDir = new Option<string?>("--out") { Description = "Run directory for metrics.jsonl, loss.png and checkpoint/ [default: runs/<time>-<data>]." };
        var resume = new Option<bool>("--resume") { Description = "Continue the run saved in --out exactly where its checkpoint stopped." };
        var evalEvery = new Option<int?>("--eval-every") { Description = $"Evaluate every N steps [default: {TextDefaults.EvalEvery} for --data, {Demo.EvalEvery} for tasks]." };
        var evalBatches = new Option<int?>("--eval-batches") { Description = $"Validation batches per evaluation [default: {new TrainOptions().EvalBatches}]." };
        var sampleEvery = new Option<int?>("--sample-every") { Description = $"Print samples every N steps, 0 = only at the end [default: {TextDefaults.SampleEvery} for --data, {Demo.SampleEvery} for tasks]." };
        var logEvery = new Option<int?>("--log-every") { Description = $"Log a progress line every N steps [default: {new TrainOptions().LogEvery}]." };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = $"Checkpoint every N steps, 0 = off (always at the end and on Ctrl+C, SIGTERM or SIGHUP) [default: {new TrainOptions().CheckpointEvery}]." };
        var checkpointMinutes = new Option<double?>("--checkpoint-minutes") { Description = $"Also checkpoint when this many minutes passed since the last one, 0 = off [default: {new TrainOptions().CheckpointEverySeconds / 60}]." };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for torch [default: 1 for tasks, whose tiny models lose more to thread sync than they gain; else torch's default]." };
        var target = new Option<double?>("--target-exact-match") { Description = $"Tasks: stop once held-out exact match reaches this fraction, 0 = off [default: {Demo.TargetExactMatch}]." };
        var precision = new Option<string?>("--precision") { Description = $"{string.Join(", ", Precision.Names)}: bf16/fp16 train in mixed precision over float32 master weights [default: fp32; may change on --resume]." };

        var cmd = new Command("train", "Train a model on a text corpus or a synthetic task (no arguments: the built-in reverse-task demo).")
        {
            config, preset, data, task, taskLength, taskSymbols, tokenizer, dim, depth, heads, seqLen, steps, batch, gradAccum, lr, warmup,
            weightDecay, gradClip, device, seed, outDir, resume, evalEvery, evalBatches, sampleEvery, logEvery, checkpointEvery, checkpointMinutes, target, threads,
            precision,
        };
        cmd.SetAction(r =>
        {
            var s = new TrainRequest(
                r.GetValue(config), r.GetValue(preset), r.GetValue(data), r.GetValue(task), r.GetValue(taskLength), r.GetValue(taskSymbols),
                r.GetValue(tokenizer), r.GetValue(dim), r.GetValue(depth), r.GetValue(heads), r.GetValue(seqLen), r.GetValue(steps),
                r.GetValue(batch), r.GetValue(gradAccum), r.GetValue(lr), r.GetValue(warmup), r.GetValue(weightDecay), r.GetValue(gradClip),
                r.GetValue(device), r.GetValue(seed), r.GetValue(outDir), r.GetValue(resume), r.GetValue(evalEvery), r.GetValue(evalBatches),
                r.GetValue(sampleEvery), r.GetValue(logEvery), r.GetValue(checkpointEvery), r.GetValue(checkpointMinutes), r.GetValue(target), r.GetValue(threads),
                r.GetValue(precision));
            return Run(s);
        });
        return cmd;
    }

    /// <summary>Everything the command line said; null = not given.</summary>
    sealed record TrainRequest(string? Config, string? Preset, string? Data, string? Task, int? TaskLength, int? TaskSymbols,
        string? Tokenizer, int? Dim, int? Depth, int? Heads, int? SeqLen, int? Steps, int? Batch, int? GradAccum, double? Lr,
        int? Warmup, double? WeightDecay, double? GradClip, string? Device, int? Seed, string? Out, bool Resume, int? EvalEvery,
        int? EvalBatches, int? SampleEvery, int? LogEvery, int? CheckpointEvery, double? CheckpointMinutes, double? TargetExactMatch, int? Threads, string? Precision);

    static int Run(TrainRequest q)
    {
        // Pick the backend before any tensor exists (a process holds one libtorch).
        TorchRuntime.SelectDevice(q.Device ?? "cpu");
        if (q.Threads is { } n)
        {
            if (n < 1) throw new ArgumentException($"--threads must be a positive integer, got {n}");
            ThreadPolicy.Fix(n);
        }
        if (q.CheckpointMinutes is < 0 || q.CheckpointMinutes is { } m && !double.IsFinite(m))
            throw new ArgumentException($"--checkpoint-minutes must be 0 (off) or a positive number, got {q.CheckpointMinutes}");
        return q.Resume ? RunResume(q) : RunNew(q);
    }

    /// <summary>Tasks train tiny models: one thread avoids OpenMP synchronisation that costs more than it saves (6x on 2 busy cores).</summary>
    static void DefaultThreads(TrainRequest q, bool task)
    {
        if (q.Threads is null && task) ThreadPolicy.Fix(1);
    }

    /// <summary>
    /// Takes the run directory: refuses a path that is a file or cannot be written, then holds its lock (another
    /// tforge training there makes this one stop with exit 2 before it touches anything). Internal errors log there.
    /// </summary>
    static RunLock TakeRunDirectory(string outDir)
    {
        if (File.Exists(outDir)) throw new IOException($"--out '{outDir}' is a file; give a directory for the run");
        try
        {
            Directory.CreateDirectory(outDir);
            var probe = Path.Combine(outDir, $".tforge-write-test-{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot write to --out '{outDir}': {e.Message}", e);
        }
        var runLock = RunLock.Acquire(outDir);
        CliRunner.RunDirectory = outDir;
        return runLock;
    }

    static int RunNew(TrainRequest q)
    {
        if (q.Data is not null && q.Task is not null) throw new ArgumentException("give --data or --task, not both");
        if (q.Config is not null && (q.Preset ?? (object?)q.Dim ?? q.Depth ?? (object?)q.Heads) is not null)
            throw new ArgumentException("--config gives the whole model; drop --preset, --dim, --depth and --heads (or drop --config)");
        bool text = q.Data is not null;
        if (text && (q.TaskLength ?? q.TaskSymbols) is not null) throw new ArgumentException("--task-length and --task-symbols apply to --task only");
        if (!text && q.Tokenizer is not null) throw new ArgumentException("--tokenizer applies to --data only (a task has its own tokens)");
        if (!text && q.SeqLen is not null) throw new ArgumentException("--seq-len applies to --data only (a task sets its own length)");
        if (text && q.TargetExactMatch is not null) throw new ArgumentException("--target-exact-match applies to --task only");
        if (q.Data is not null) CheckCorpus(q.Data);

        ModelConfig? fileConfig = q.Config is null ? null : ModelConfig.Load(q.Config);
        var presetName = q.Preset ?? Demo.Preset;
        // Validate the preset name before any slow work (tokenizing a corpus).
        if (fileConfig is null) ModelPresets.Describe(presetName);

        var outDir = q.Out ?? Path.Combine("runs", $"{DateTime.Now:yyyyMMdd-HHmmss}-{(text ? Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(q.Data!)) : q.Task ?? Demo.Task)}");
        using var runLock = TakeRunDirectory(outDir);
        if (Checkpoint.IsComplete(Checkpoint.InRun(outDir)))
            throw new ArgumentException($"'{outDir}' already holds a training run; pass --resume to continue it, or choose another --out");

        int? configSeqLen = fileConfig switch
        {
            TransformerWrapperConfig c => c.MaxSeqLen,
            TransformerPlusPlusConfig c => c.MaxSeqLen,
            _ => null,
        };
        int seqLen = text ? q.SeqLen ?? configSeqLen ?? TextDefaults.SeqLen : 0;
        if (seqLen <= 0 && text) throw new ArgumentException($"--seq-len must be a positive integer, got {seqLen}");
        if (text && seqLen > configSeqLen)
            throw new ArgumentException($"--seq-len {seqLen} is longer than the model's max_seq_len {configSeqLen} in {q.Config}");

        using ITrainingData data = text
            ? TextWindowData.Open(q.Data!, Tokenizers.CreateFromCorpus(q.Tokenizer ?? "bytes", q.Data!), seqLen)
            : (ITrainingData)new SyntheticTaskData(SyntheticTasks.Create(q.Task ?? Demo.Task, new SyntheticTaskOptions(q.TaskLength, q.TaskSymbols)),
                TrainingDataSpec.ForTask(q.Task ?? Demo.Task, new SyntheticTaskOptions(q.TaskLength, q.TaskSymbols)));

        var model = fileConfig ?? ModelPresets.Create(presetName, data.VocabSize, data.InputLength,
            q.Dim ?? (text ? TextDefaults.Dim : Demo.Dim), q.Depth ?? (text ? TextDefaults.Depth : Demo.Depth), q.Heads ?? (text ? TextDefaults.Heads : Demo.Heads));

        var defaults = new TrainOptions();
        var options = new TrainOptions
        {
            Steps = q.Steps ?? (text ? TextDefaults.Steps : Demo.Steps),
            BatchSize = q.Batch ?? (text ? TextDefaults.Batch : Demo.Batch),
            GradAccumulation = q.GradAccum ?? 1,
            LearningRate = q.Lr ?? (text ? TextDefaults.LearningRate : Demo.LearningRate),
            WarmupSteps = q.Warmup ?? (text ? TextDefaults.Warmup : Demo.Warmup),
            WeightDecay = q.WeightDecay ?? defaults.WeightDecay,
            GradClip = q.GradClip ?? defaults.GradClip,
            Device = q.Device ?? "cpu",
            Precision = q.Precision ?? Precision.Fp32,
            Seed = q.Seed ?? defaults.Seed,
            OutDir = outDir,
            EvalEvery = q.EvalEvery ?? (text ? TextDefaults.EvalEvery : Demo.EvalEvery),
            EvalBatches = q.EvalBatches ?? defaults.EvalBatches,
            SampleEvery = q.SampleEvery ?? (text ? TextDefaults.SampleEvery : Demo.SampleEvery),
            LogEvery = q.LogEvery ?? defaults.LogEvery,
            CheckpointEvery = q.CheckpointEvery ?? defaults.CheckpointEvery,
            CheckpointEverySeconds = q.CheckpointMinutes is { } minutes ? minutes * 60 : defaults.CheckpointEverySeconds,
            TargetExactMatch = text ? null : Target(q.TargetExactMatch ?? Demo.TargetExactMatch),
        };

        DefaultThreads(q, !text);
        using var trainer = Trainer.Create(model, data, options);
        Console.WriteLine($"model: {(q.Config ?? $"preset {presetName}")} ({DescribeModel(model)})");
        return TrainingConsole.Train(trainer);
    }

    static int RunResume(TrainRequest q)
    {
        if (q.Out is null) throw new ArgumentException("--resume continues the run in --out DIR; give --out");
        // The model and its data come from the checkpoint; the optimizer options are checked by the library (ResumeRules).
        var fixedOptions = new (string Name, object? Value)[]
        {
            ("--config", q.Config), ("--preset", q.Preset), ("--task", q.Task), ("--task-length", q.TaskLength),
            ("--task-symbols", q.TaskSymbols), ("--tokenizer", q.Tokenizer), ("--dim", q.Dim), ("--depth", q.Depth), ("--heads", q.Heads),
            ("--seq-len", q.SeqLen),
        }.Where(x => x.Value is not null).Select(x => x.Name).ToList();
        if (fixedOptions.Count > 0)
            throw new ArgumentException($"{string.Join(", ", fixedOptions)} cannot change when resuming (the checkpoint fixes the model and its data)");
        if (!Directory.Exists(q.Out)) throw new DirectoryNotFoundException($"no checkpoint at '{q.Out}' (the --out directory does not exist)");

        using var runLock = TakeRunDirectory(q.Out);
        var dir = Checkpoint.Resolve(q.Out);
        var state = TrainerState.Load(dir);
        var o = state.Options;
        var options = o with
        {
            Steps = q.Steps ?? o.Steps,
            Device = q.Device ?? o.Device,
            Precision = q.Precision ?? o.Precision,
            OutDir = q.Out,
            EvalEvery = q.EvalEvery ?? o.EvalEvery,
            EvalBatches = q.EvalBatches ?? o.EvalBatches,
            SampleEvery = q.SampleEvery ?? o.SampleEvery,
            LogEvery = q.LogEvery ?? o.LogEvery,
            CheckpointEvery = q.CheckpointEvery ?? o.CheckpointEvery,
            CheckpointEverySeconds = q.CheckpointMinutes is { } minutes ? minutes * 60 : o.CheckpointEverySeconds,
            TargetExactMatch = q.TargetExactMatch is { } t ? Target(t) : o.TargetExactMatch,
            // Given only to be checked: the library refuses a change that would break exactness.
            Seed = q.Seed ?? o.Seed, BatchSize = q.Batch ?? o.BatchSize, GradAccumulation = q.GradAccum ?? o.GradAccumulation,
            LearningRate = q.Lr ?? o.LearningRate, WarmupSteps = q.Warmup ?? o.WarmupSteps, WeightDecay = q.WeightDecay ?? o.WeightDecay,
            GradClip = q.GradClip ?? o.GradClip,
        };
        var spec = TrainingDataSpec.Load(dir);
        // A corpus that moved: --data names where it is now (its content must match), else data.json's relative path finds it.
        if (q.Data is not null) spec = spec.WithMovedCorpus(q.Data);
        using var data = spec.Open(spec.Kind == TrainingDataSpec.TextKind ? dir : null, dir);
        DefaultThreads(q, spec.Kind == TrainingDataSpec.TaskKind);
        using var trainer = Trainer.Resume(dir, data, options);
        Console.WriteLine($"resuming '{dir}' at step {trainer.Step} of {options.Steps}");
        if (trainer.SavedThreads is { } saved && saved != trainer.Threads)
            Console.WriteLine($"note: {trainer.Threads} CPU threads, the run used {saved}: sums round differently, so the result will differ " +
                "from an uninterrupted run in the last bits (leave out --threads to keep the run's count)");
        return TrainingConsole.Train(trainer);
    }

    /// <summary>0 turns early stopping off; otherwise a fraction in (0, 1].</summary>
    static double? Target(double value) => value switch
    {
        0 => null,
        > 0 and <= 1 => value,
        _ => throw new ArgumentException($"--target-exact-match must be 0 (off) or in (0, 1], got {value}"),
    };

    static string DescribeModel(ModelConfig c) => c switch
    {
        TransformerWrapperConfig t => $"{t.AttnLayers.Type.JsonName()}, dim {t.AttnLayers.Dim}, depth {t.AttnLayers.Depth}, heads {t.AttnLayers.Heads}, vocab {t.NumTokens}, max_seq_len {t.MaxSeqLen}",
        TransformerPlusPlusConfig p => $"Transformer++ ({p.Block}), dim {p.Dim}, depth {p.Depth}, mixers {Mixers(p)}, vocab {p.NumTokens}, max_seq_len {p.MaxSeqLen}",
        _ => c.Type,
    };

    /// <summary>Each layer's heads per mixer ("mha:2 sgconv:2 | mha:4"), once when every layer has the same.</summary>
    static string Mixers(TransformerPlusPlusConfig p)
    {
        var layers = p.Layers.Select(l => string.Join(" ", l.Mixers.Select(m => $"{m.Op}:{m.Heads}"))).ToList();
        return layers.Distinct().Count() == 1 ? $"{layers[0]} in every layer" : string.Join(" | ", layers);
    }

    /// <summary>Fails early, naming the file, for a missing or empty corpus (before tokenizer or model work).</summary>
    static void CheckCorpus(string path)
    {
        if (File.Exists(path))
        {
            if (new FileInfo(path).Length == 0) throw new InvalidDataException($"data file '{path}' is empty");
            return;
        }
        if (!Directory.Exists(path)) throw new FileNotFoundException($"data file or folder '{path}' does not exist", path);
    }
}
