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
        var config = new Option<string?>("--config") { Description = "Model JSON (x-transformers constructor as JSON); excludes --preset/--dim/--depth/--heads." };
        var preset = new Option<string?>("--preset") { Description = $"Built-in model: {string.Join(", ", ModelPresets.Names)} (default {Demo.Preset})." };
        var data = new Option<string?>("--data") { Description = "Text corpus: a file, or a folder of .txt files." };
        var task = new Option<string?>("--task") { Description = $"Synthetic task: {string.Join(", ", SyntheticTasks.Names)} (default {Demo.Task} when no --data)." };
        var taskLength = new Option<int?>("--task-length") { Description = "Task size: items to copy/reverse/sort, pairs to recall, digits to add." };
        var taskSymbols = new Option<int?>("--task-symbols") { Description = "Task alphabet size (or number base for addition)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = $"Tokenizer for --data: {string.Join(", ", Tokenizers.Kinds)} (default bytes)." };
        var dim = new Option<int?>("--dim") { Description = "Model width." };
        var depth = new Option<int?>("--depth") { Description = "Number of layers (attention + feed-forward blocks)." };
        var heads = new Option<int?>("--heads") { Description = "Attention heads (head size = dim / heads)." };
        var seqLen = new Option<int?>("--seq-len") { Description = $"Tokens per training window for --data (default {TextDefaults.SeqLen}, or the config's max_seq_len)." };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps (the run's total; with --resume, may be raised)." };
        var batch = new Option<int?>("--batch") { Description = "Sequences per micro-batch." };
        var gradAccum = new Option<int?>("--grad-accum") { Description = "Micro-batches per optimizer step (default 1)." };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate." };
        var warmup = new Option<int?>("--warmup") { Description = "Linear warmup steps." };
        var weightDecay = new Option<double?>("--weight-decay") { Description = "AdamW weight decay on matrices (default 0.01)." };
        var gradClip = new Option<double?>("--grad-clip") { Description = "Gradient norm clip, 0 = off (default 1)." };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N (default cpu)." };
        var seed = new Option<int?>("--seed") { Description = "Seed of initialisation, batches and dropout (default 1234)." };
        var outDir = new Option<string?>("--out") { Description = "Run directory for metrics.jsonl, loss.png and checkpoint/ (default runs/<time>-<data>)." };
        var resume = new Option<bool>("--resume") { Description = "Continue the run saved in --out exactly where its checkpoint stopped." };
        var evalEvery = new Option<int?>("--eval-every") { Description = "Evaluate every N steps." };
        var evalBatches = new Option<int?>("--eval-batches") { Description = "Validation batches per evaluation (default 8)." };
        var sampleEvery = new Option<int?>("--sample-every") { Description = "Print samples every N steps (0 = only at the end)." };
        var logEvery = new Option<int?>("--log-every") { Description = "Log a progress line every N steps (default 10)." };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = "Checkpoint every N steps (default 500; always at the end)." };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for torch (default: 1 for tasks, whose tiny models lose more to thread sync than they gain; else torch's default)." };
        var precision = new Option<string?>("--precision") { Description = $"{string.Join(", ", Precision.Names)}: bf16/fp16 train in mixed precision over float32 master weights (default fp32; may change on --resume)." };
        var target = new Option<double?>("--target-exact-match") { Description = $"Tasks: stop once held-out exact match reaches this fraction (default {Demo.TargetExactMatch}; 0 = off)." };

        var cmd = new Command("train", "Train a model on a text corpus or a synthetic task (no arguments: the built-in reverse-task demo).")
        {
            config, preset, data, task, taskLength, taskSymbols, tokenizer, dim, depth, heads, seqLen, steps, batch, gradAccum, lr, warmup,
            weightDecay, gradClip, device, seed, outDir, resume, evalEvery, evalBatches, sampleEvery, logEvery, checkpointEvery, target, threads,
            precision,
        };
        cmd.SetAction(r =>
        {
            var s = new TrainRequest(
                r.GetValue(config), r.GetValue(preset), r.GetValue(data), r.GetValue(task), r.GetValue(taskLength), r.GetValue(taskSymbols),
                r.GetValue(tokenizer), r.GetValue(dim), r.GetValue(depth), r.GetValue(heads), r.GetValue(seqLen), r.GetValue(steps),
                r.GetValue(batch), r.GetValue(gradAccum), r.GetValue(lr), r.GetValue(warmup), r.GetValue(weightDecay), r.GetValue(gradClip),
                r.GetValue(device), r.GetValue(seed), r.GetValue(outDir), r.GetValue(resume), r.GetValue(evalEvery), r.GetValue(evalBatches),
                r.GetValue(sampleEvery), r.GetValue(logEvery), r.GetValue(checkpointEvery), r.GetValue(target), r.GetValue(threads),
                r.GetValue(precision));
            return Run(s);
        });
        return cmd;
    }

    /// <summary>Everything the command line said; null = not given.</summary>
    sealed record TrainRequest(string? Config, string? Preset, string? Data, string? Task, int? TaskLength, int? TaskSymbols,
        string? Tokenizer, int? Dim, int? Depth, int? Heads, int? SeqLen, int? Steps, int? Batch, int? GradAccum, double? Lr,
        int? Warmup, double? WeightDecay, double? GradClip, string? Device, int? Seed, string? Out, bool Resume, int? EvalEvery,
        int? EvalBatches, int? SampleEvery, int? LogEvery, int? CheckpointEvery, double? TargetExactMatch, int? Threads, string? Precision);

    static int Run(TrainRequest q)
    {
        // Pick the backend before any tensor exists (a process holds one libtorch).
        TorchRuntime.SelectDevice(q.Device ?? "cpu");
        if (q.Threads is { } n)
        {
            if (n < 1) throw new ArgumentException($"--threads must be a positive integer, got {n}");
            ThreadPolicy.Fix(n);
        }
        return q.Resume ? RunResume(q) : RunNew(q);
    }

    /// <summary>Tasks train tiny models: one thread avoids OpenMP synchronisation that costs more than it saves (6x on 2 busy cores).</summary>
    static void DefaultThreads(TrainRequest q, bool task)
    {
        if (q.Threads is null && task) ThreadPolicy.Fix(1);
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
        if (Checkpoint.IsComplete(Checkpoint.InRun(outDir)))
            throw new ArgumentException($"'{outDir}' already holds a training run; pass --resume to continue it, or choose another --out");

        int seqLen = text ? q.SeqLen ?? (fileConfig as TransformerWrapperConfig)?.MaxSeqLen ?? TextDefaults.SeqLen : 0;
        if (seqLen <= 0 && text) throw new ArgumentException($"--seq-len must be a positive integer, got {seqLen}");
        if (text && fileConfig is TransformerWrapperConfig fc && seqLen > fc.MaxSeqLen)
            throw new ArgumentException($"--seq-len {seqLen} is longer than the model's max_seq_len {fc.MaxSeqLen} in {q.Config}");

        using ITrainingData data = text
            ? TextWindowData.Open(q.Data!, Tokenizers.CreateFromCorpus(q.Tokenizer ?? "bytes", q.Data!), seqLen)
            : (ITrainingData)new SyntheticTaskData(SyntheticTasks.Create(q.Task ?? Demo.Task, new SyntheticTaskOptions(q.TaskLength, q.TaskSymbols)),
                TrainingDataSpec.ForTask(q.Task ?? Demo.Task, new SyntheticTaskOptions(q.TaskLength, q.TaskSymbols)));

        var model = fileConfig ?? ModelPresets.Create(presetName, data.VocabSize, data.InputLength,
            q.Dim ?? (text ? TextDefaults.Dim : Demo.Dim), q.Depth ?? (text ? TextDefaults.Depth : Demo.Depth), q.Heads ?? (text ? TextDefaults.Heads : Demo.Heads));

        var options = new TrainOptions
        {
            Steps = q.Steps ?? (text ? TextDefaults.Steps : Demo.Steps),
            BatchSize = q.Batch ?? (text ? TextDefaults.Batch : Demo.Batch),
            GradAccumulation = q.GradAccum ?? 1,
            LearningRate = q.Lr ?? (text ? TextDefaults.LearningRate : Demo.LearningRate),
            WarmupSteps = q.Warmup ?? (text ? TextDefaults.Warmup : Demo.Warmup),
            WeightDecay = q.WeightDecay ?? new TrainOptions().WeightDecay,
            GradClip = q.GradClip ?? new TrainOptions().GradClip,
            Device = q.Device ?? "cpu",
            Precision = q.Precision ?? Precision.Fp32,
            Seed = q.Seed ?? new TrainOptions().Seed,
            OutDir = outDir,
            EvalEvery = q.EvalEvery ?? (text ? TextDefaults.EvalEvery : Demo.EvalEvery),
            EvalBatches = q.EvalBatches ?? new TrainOptions().EvalBatches,
            SampleEvery = q.SampleEvery ?? (text ? TextDefaults.SampleEvery : Demo.SampleEvery),
            LogEvery = q.LogEvery ?? new TrainOptions().LogEvery,
            CheckpointEvery = q.CheckpointEvery ?? new TrainOptions().CheckpointEvery,
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
        var fixedOptions = new (string Name, object? Value)[]
        {
            ("--config", q.Config), ("--preset", q.Preset), ("--data", q.Data), ("--task", q.Task), ("--task-length", q.TaskLength),
            ("--task-symbols", q.TaskSymbols), ("--tokenizer", q.Tokenizer), ("--dim", q.Dim), ("--depth", q.Depth), ("--heads", q.Heads),
            ("--seq-len", q.SeqLen), ("--batch", q.Batch), ("--grad-accum", q.GradAccum), ("--lr", q.Lr), ("--warmup", q.Warmup),
            ("--weight-decay", q.WeightDecay), ("--grad-clip", q.GradClip), ("--seed", q.Seed),
        }.Where(x => x.Value is not null).Select(x => x.Name).ToList();
        if (fixedOptions.Count > 0)
            throw new ArgumentException($"{string.Join(", ", fixedOptions)} cannot change when resuming (the checkpoint fixes the model, data and optimizer)");

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
            TargetExactMatch = q.TargetExactMatch is { } t ? Target(t) : o.TargetExactMatch,
        };
        var spec = TrainingDataSpec.Load(dir);
        using var data = spec.Open(spec.Kind == TrainingDataSpec.TextKind ? dir : null);
        DefaultThreads(q, spec.Kind == TrainingDataSpec.TaskKind);
        using var trainer = Trainer.Resume(dir, data, options);
        Console.WriteLine($"resuming '{dir}' at step {trainer.Step} of {options.Steps}");
        return TrainingConsole.Train(trainer);
    }

    /// <summary>0 turns early stopping off; otherwise a fraction in (0, 1].</summary>
    static double? Target(double value) => value switch
    {
        0 => null,
        > 0 and <= 1 => value,
        _ => throw new ArgumentException($"--target-exact-match must be 0 (off) or in (0, 1], got {value}"),
    };

    static string DescribeModel(ModelConfig c) => c is TransformerWrapperConfig t
        ? $"{t.AttnLayers.Type.JsonName()}, dim {t.AttnLayers.Dim}, depth {t.AttnLayers.Depth}, heads {t.AttnLayers.Heads}, vocab {t.NumTokens}, max_seq_len {t.MaxSeqLen}"
        : c.Type;

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
