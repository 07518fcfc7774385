using TorchSharp;
using TransformerForge.Config;
using TransformerForge.IO;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// A training checkpoint: a model directory (<c>config.json</c>, <c>model.safetensors</c>) that also holds the data
/// description (<c>data.json</c>, <c>tokenizer.json</c> for text), the optimizer state (<c>optimizer.safetensors</c>),
/// the torch RNG (<c>rng.safetensors</c>), <c>trainer_state.json</c> and <c>metrics.json</c> (the last evaluation).
/// <para>
/// Saving writes everything into a temporary sibling directory and renames it into place
/// (<see cref="ModelDirectory.Replace"/>): the old checkpoint is renamed to <c>checkpoint.old-*</c>, the new one to
/// <c>checkpoint</c>, and the old one deleted. A process killed at any moment leaves either the new or the previous
/// checkpoint complete; <see cref="Resolve"/> renames a complete <c>.old-*</c> back if it was killed between the two renames.
/// </para>
/// </summary>
public static class Checkpoint
{
    public const string DirectoryName = "checkpoint";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string RngFile = "rng.safetensors";
    public const string MetricsFile = "metrics.json";

    /// <summary>Files every complete checkpoint has.</summary>
    public static readonly string[] RequiredFiles =
        { ModelDirectory.ConfigFile, ModelDirectory.WeightsFile, TrainingDataSpec.FileName, OptimizerFile, RngFile, TrainerState.FileName };

    /// <summary>The checkpoint directory of a run directory.</summary>
    public static string InRun(string runDirectory) => Path.Combine(runDirectory, DirectoryName);

    /// <param name="device">The device the run trains on: on CUDA the CUDA generator's state is saved too (see <see cref="TrainingRng"/>).</param>
    public static void Save(string directory, ModelConfig config, nn.Module model, AdamW optimizer, TrainerState state, ITrainingData data,
        Device? device = null)
    {
        var full = Path.GetFullPath(directory);
        try
        {
            RemoveLeftovers(full);
            Write(full, config, model, optimizer, state, data, device);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not RunLockedException)
        {
            // A full disk or a permission problem: the temporary directory is gone and the previous checkpoint untouched.
            throw new IOException($"could not write the checkpoint '{full}': {e.Message.TrimEnd('.')}; the previous checkpoint (if any) is left as it was", e);
        }
    }

    static void Write(string full, ModelConfig config, nn.Module model, AdamW optimizer, TrainerState state, ITrainingData data, Device? device)
    {
        ModelDirectory.Save(full, config, model, tmp =>
        {
            data.Spec.Save(tmp);
            data.SaveFiles(tmp);
            var optimizerState = optimizer.StateTensors();
            try { SafeTensorsTorch.Save(Path.Combine(tmp, OptimizerFile), optimizerState); }
            finally { foreach (var t in optimizerState.Values) t.Dispose(); }
            var rng = TrainingRng.Capture(device ?? CPU, state.Options.Seed, state.Step);
            try { SafeTensorsTorch.Save(Path.Combine(tmp, RngFile), rng); }
            finally { foreach (var t in rng.Values) t.Dispose(); }
            if (state.LastEvaluation is { } eval)
                File.WriteAllText(Path.Combine(tmp, MetricsFile), System.Text.Json.JsonSerializer.Serialize(eval, TrainingDataSpec.Json));
            // Written last: a directory with trainer_state.json has everything before it.
            state.Save(tmp);
        });
    }

    /// <summary>
    /// The checkpoint directory for <paramref name="path"/>: the path itself when it holds a checkpoint, else its
    /// <c>checkpoint/</c> subdirectory (a run directory). Restores a checkpoint a killed save left renamed away.
    /// </summary>
    public static string Resolve(string path)
    {
        var full = Path.GetFullPath(path);
        if (IsComplete(full)) return full;
        if (Recover(full)) return full;
        var inRun = InRun(full);
        if (IsComplete(inRun) || Recover(inRun)) return inRun;
        if (Directory.Exists(inRun))
            throw new InvalidDataException($"'{inRun}' is not a complete checkpoint: missing {string.Join(", ", Missing(inRun))}");
        if (Directory.Exists(full) && File.Exists(Path.Combine(full, ModelDirectory.ConfigFile)))
            throw new InvalidDataException($"'{full}' is a model directory but not a training checkpoint: missing {string.Join(", ", Missing(full))}");
        throw new DirectoryNotFoundException($"no checkpoint at '{path}' (expected a checkpoint directory or a run directory with {DirectoryName}/)");
    }

    public static bool IsComplete(string directory) => Directory.Exists(directory) && Missing(directory).Count == 0;

    static List<string> Missing(string directory) => RequiredFiles.Where(f => !File.Exists(Path.Combine(directory, f))).ToList();

    /// <summary>If <paramref name="target"/> is missing but a complete <c>target.old-*</c> exists, renames the newest one back.</summary>
    static bool Recover(string target)
    {
        if (Directory.Exists(target)) return false;
        var parent = Path.GetDirectoryName(target);
        if (parent is null || !Directory.Exists(parent)) return false;
        var best = Directory.EnumerateDirectories(parent, Path.GetFileName(target) + ".old-*")
            .Where(IsComplete)
            .Select(d => (Dir: d, Step: TryStep(d)))
            .Where(x => x.Step is not null)
            .OrderByDescending(x => x.Step)
            .FirstOrDefault();
        if (best.Dir is null) return false;
        Directory.Move(best.Dir, target);
        return true;
    }

    static int? TryStep(string directory)
    {
        try { return TrainerState.Load(directory).Step; }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException) { return null; }
    }

    /// <summary>Deletes temporary directories of earlier killed saves and, once the checkpoint itself is in place, old copies.</summary>
    static void RemoveLeftovers(string target)
    {
        var parent = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(parent)) return;
        var name = Path.GetFileName(target);
        Recover(target);
        var stale = Directory.EnumerateDirectories(parent, $".{name}.tmp-*").ToList();
        if (Directory.Exists(target)) stale.AddRange(Directory.EnumerateDirectories(parent, $"{name}.old-*"));
        foreach (var dir in stale)
        {
            try { Directory.Delete(dir, recursive: true); }
            catch (IOException) { } // another attempt is made before the next save
        }
    }

    /// <summary>
    /// Reads everything a resume restores — trainer state, data description, optimizer state and RNG state — and checks
    /// the parts against each other before any of it is used: the optimizer's step counts against the trainer's step,
    /// the generator states' sizes, the schedule against the options. The caller disposes the result.
    /// </summary>
    public static CheckpointContents Read(string directory)
    {
        var state = TrainerState.Load(directory);
        var data = TrainingDataSpec.Load(directory);
        var optimizerPath = Path.Combine(directory, OptimizerFile);
        var rngPath = Path.Combine(directory, RngFile);
        var optimizer = SafeTensorsTorch.Load(optimizerPath);
        Dictionary<string, Tensor>? rng = null;
        try
        {
            // fp16 skips the optimizer on overflowing steps (the loss scaler's state is saved then): only an upper bound.
            CheckOptimizerSteps(optimizer, state.Step, optimizerPath, everyStepApplied: state.LossScale is null);
            rng = SafeTensorsTorch.Load(rngPath);
            TrainingRng.Check(rng, rngPath);
            return new CheckpointContents(directory, state, data, optimizer, rng);
        }
        catch
        {
            foreach (var t in optimizer.Values) t.Dispose();
            if (rng is not null) foreach (var t in rng.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Each parameter's AdamW step count is an int64 scalar between 0 and the trainer's step, and the largest equals it
    /// when every step applies the optimizer (it updates at least one parameter): a checkpoint whose parts come from
    /// different steps is refused.
    /// </summary>
    static void CheckOptimizerSteps(IReadOnlyDictionary<string, Tensor> optimizer, int step, string source, bool everyStepApplied)
    {
        long max = 0;
        bool any = false;
        foreach (var (name, t) in optimizer)
        {
            if (!name.EndsWith(".step", StringComparison.Ordinal)) continue;
            if (t.dtype != ScalarType.Int64 || t.NumberOfElements != 1)
                throw new InvalidDataException($"{source}: '{name}' must be an int64 scalar, but it is {t.dtype} [{string.Join(", ", t.shape)}]");
            long v = t.item<long>();
            if (v < 0 || v > step)
                throw new InvalidDataException($"{source}: '{name}' is {v}, but the checkpoint is at step {step} ({TrainerState.FileName})");
            max = Math.Max(max, v);
            any = true;
        }
        if (any && everyStepApplied && max != step)
            throw new InvalidDataException($"{source}: the optimizer state is at step {max}, but {TrainerState.FileName} says step {step}; the checkpoint's parts do not belong together");
    }

    /// <summary>Loads the optimizer state of <paramref name="directory"/> into <paramref name="optimizer"/>.</summary>
    public static void LoadOptimizer(string directory, AdamW optimizer)
    {
        var path = Path.Combine(directory, OptimizerFile);
        var tensors = SafeTensorsTorch.Load(path);
        try { optimizer.LoadState(tensors, path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Sets the torch generators to the state saved in <paramref name="directory"/> (checked first).</summary>
    public static void RestoreRng(string directory, Device? device = null)
    {
        var path = Path.Combine(directory, RngFile);
        var tensors = SafeTensorsTorch.Load(path);
        try
        {
            TrainingRng.Check(tensors, path);
            TrainingRng.Restore(tensors, device ?? CPU);
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }
}

/// <summary>A checkpoint's parts, read and checked against each other (<see cref="Checkpoint.Read"/>).</summary>
public sealed class CheckpointContents(string directory, TrainerState state, TrainingDataSpec data,
    Dictionary<string, Tensor> optimizer, Dictionary<string, Tensor> rng) : IDisposable
{
    public string Directory { get; } = directory;
    public TrainerState State { get; } = state;
    public TrainingDataSpec Data { get; } = data;
    public IReadOnlyDictionary<string, Tensor> Optimizer { get; } = optimizer;
    public IReadOnlyDictionary<string, Tensor> Rng { get; } = rng;

    public void Dispose()
    {
        foreach (var t in optimizer.Values) t.Dispose();
        foreach (var t in rng.Values) t.Dispose();
    }
}
