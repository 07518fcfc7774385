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
    const string TorchCpuRngKey = "torch_cpu";

    /// <summary>Files every complete checkpoint has.</summary>
    public static readonly string[] RequiredFiles =
        { ModelDirectory.ConfigFile, ModelDirectory.WeightsFile, TrainingDataSpec.FileName, OptimizerFile, RngFile, TrainerState.FileName };

    /// <summary>The checkpoint directory of a run directory.</summary>
    public static string InRun(string runDirectory) => Path.Combine(runDirectory, DirectoryName);

    public static void Save(string directory, ModelConfig config, nn.Module model, AdamW optimizer, TrainerState state, ITrainingData data)
    {
        var full = Path.GetFullPath(directory);
        RemoveLeftovers(full);
        ModelDirectory.Save(full, config, model, tmp =>
        {
            data.Spec.Save(tmp);
            data.SaveFiles(tmp);
            var optimizerState = optimizer.StateTensors();
            try { SafeTensorsTorch.Save(Path.Combine(tmp, OptimizerFile), optimizerState); }
            finally { foreach (var t in optimizerState.Values) t.Dispose(); }
            using (var rng = torch.random.get_rng_state())
                SafeTensorsTorch.Save(Path.Combine(tmp, RngFile), new Dictionary<string, Tensor> { [TorchCpuRngKey] = rng });
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

    /// <summary>Loads the optimizer state of <paramref name="directory"/> into <paramref name="optimizer"/>.</summary>
    public static void LoadOptimizer(string directory, AdamW optimizer)
    {
        var path = Path.Combine(directory, OptimizerFile);
        var tensors = SafeTensorsTorch.Load(path);
        try { optimizer.LoadState(tensors, path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Sets the global torch RNG to the state saved in <paramref name="directory"/>.</summary>
    public static void RestoreRng(string directory)
    {
        var path = Path.Combine(directory, RngFile);
        var tensors = SafeTensorsTorch.Load(path);
        try
        {
            if (!tensors.TryGetValue(TorchCpuRngKey, out var state) || state.dtype != ScalarType.Byte)
                throw new InvalidDataException($"{path} has no uint8 '{TorchCpuRngKey}' generator state");
            torch.random.set_rng_state(state);
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }
}
