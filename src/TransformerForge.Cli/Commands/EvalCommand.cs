using System.CommandLine;
using TorchSharp;
using TransformerForge.Cli.Training;
using TransformerForge.Data;
using TransformerForge.Generation;
using TransformerForge.IO;
using TransformerForge.Runtime;
using TransformerForge.Training;

namespace TransformerForge.Cli.Commands;

/// <summary><c>tforge eval --model DIR</c>: validation loss (and exact match for tasks) of a saved model, plus a few samples.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A model directory, a checkpoint, or a run directory (its checkpoint/).", Required = true };
        var data = new Option<string?>("--data") { Description = "Text corpus to evaluate on (default: the data the model was trained on)." };
        var task = new Option<string?>("--task") { Description = $"Synthetic task to evaluate on: {string.Join(", ", SyntheticTasks.Names)}." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer for --data when the model directory has no tokenizer.json." };
        var seqLen = new Option<int?>("--seq-len") { Description = "Window length for --data (default: the training window, or max_seq_len)." };
        var batches = new Option<int?>("--batches") { Description = "Validation batches (default: the training run's, else 8)." };
        var batch = new Option<int?>("--batch") { Description = "Sequences per batch (default: the training run's, else 32)." };
        var samples = new Option<int>("--samples") { Description = "Samples to print.", DefaultValueFactory = _ => 2 };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("eval", "Evaluate a saved model: validation loss, perplexity, bits per byte/char, exact match for tasks.")
        {
            model, data, task, tokenizer, seqLen, batches, batch, samples, device,
        };
        cmd.SetAction(r => Run(r.GetValue(model)!, r.GetValue(data), r.GetValue(task), r.GetValue(tokenizer), r.GetValue(seqLen),
            r.GetValue(batches), r.GetValue(batch), r.GetValue(samples), r.GetValue(device)!));
        return cmd;
    }

    static int Run(string modelPath, string? dataPath, string? taskName, string? tokenizerKind, int? seqLen, int? batchesOption, int? batchOption,
        int samples, string deviceSpec)
    {
        if (dataPath is not null && taskName is not null) throw new ArgumentException("give --data or --task, not both");
        var dir = CliPaths.ModelDirectory(modelPath);
        // A checkpoint's own evaluation size, so eval reproduces the numbers its run printed.
        var trained = File.Exists(Path.Combine(dir, TrainerState.FileName)) ? TrainerState.Load(dir).Options : null;
        int batches = batchesOption ?? trained?.EvalBatches ?? 8, batch = batchOption ?? trained?.BatchSize ?? 32;
        if (batches < 1 || batch < 1 || samples < 0) throw new ArgumentException("--batches and --batch must be positive and --samples not negative");
        var device = TorchRuntime.SelectDevice(deviceSpec);
        var saved = File.Exists(Path.Combine(dir, TrainingDataSpec.FileName)) ? TrainingDataSpec.Load(dir) : null;
        bool hasTokenizer = File.Exists(Path.Combine(dir, "tokenizer.json"));

        TrainingDataSpec spec;
        if (dataPath is not null)
        {
            if (File.Exists(dataPath) && new FileInfo(dataPath).Length == 0) throw new InvalidDataException($"data file '{dataPath}' is empty");
            var kind = tokenizerKind ?? (hasTokenizer ? Tokenizers.Load(dir).Kind
                : throw new ArgumentException($"'{dir}' has no tokenizer.json; give --tokenizer"));
            spec = TrainingDataSpec.ForText(dataPath, kind, seqLen ?? saved?.SeqLen ?? 0);
        }
        else if (taskName is not null)
        {
            // A model trained on text knows nothing of a task's tokens: its numbers would be nonsense.
            if (saved is { Kind: TrainingDataSpec.TextKind })
                throw new ArgumentException($"the model in '{dir}' was trained on text ({saved.Tokenizer} tokens), not on a task; evaluate it with --data");
            spec = saved is { Kind: TrainingDataSpec.TaskKind } s && string.Equals(s.Task, taskName, StringComparison.OrdinalIgnoreCase)
                ? s : TrainingDataSpec.ForTask(taskName);
        }
        else spec = saved ?? throw new ArgumentException($"'{dir}' does not say what it was trained on ({TrainingDataSpec.FileName}); give --data or --task");

        var (_, lm) = ModelDirectory.LoadLanguageModel(dir);
        using var model = lm;
        lm.to(device);
        if (taskName is not null && saved is null)
        {
            // No data.json: the vocabulary tells. A task model's num_tokens is the task's vocabulary.
            using var probe = spec.Open();
            if (probe.VocabSize != lm.NumTokens)
                throw new ArgumentException($"the model in '{dir}' has {lm.NumTokens} tokens but the {taskName} task has {probe.VocabSize}: it was not trained on this task");
        }
        if (spec.Kind == TrainingDataSpec.TextKind && spec.SeqLen is null or 0) spec = spec with { SeqLen = lm.MaxSeqLen };
        var useSavedTokenizer = spec.Kind == TrainingDataSpec.TextKind && hasTokenizer && tokenizerKind is null;
        using var data = spec.Open(useSavedTokenizer ? dir : null, dir);

        var metrics = Evaluator.Evaluate(lm, data, batches, batch, device);
        Console.WriteLine($"model: {dir}");
        Console.WriteLine($"data: {data.Description}");
        Console.WriteLine(TrainingConsole.Describe(metrics));
        if (samples > 0)
        {
            lm.eval();
            foreach (var line in data.Samples(lm, data.DefaultSampling(0), samples, 100, device)) Console.WriteLine($"  {line}");
        }
        return 0;
    }

}
