using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;

namespace TransformerForge.IO;

/// <summary>
/// A saved model: a directory with <c>config.json</c> (the model JSON) and <c>model.safetensors</c> (x-transformers'
/// parameter names). Saving writes a temporary directory and renames it into place, so a reader never sees half a model.
/// </summary>
public static class ModelDirectory
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";

    public static void Save(string directory, ModelConfig config, torch.nn.Module model, Action<string>? writeExtra = null)
    {
        var full = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            config.Save(Path.Combine(tmp, ConfigFile));
            StateDict.Save(model, Path.Combine(tmp, WeightsFile));
            writeExtra?.Invoke(tmp);
            Replace(tmp, full);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
    }

    /// <summary>Moves <paramref name="tmp"/> to <paramref name="target"/>; an existing target is renamed away first and deleted after.</summary>
    public static void Replace(string tmp, string target)
    {
        string? old = null;
        if (Directory.Exists(target))
        {
            old = target + $".old-{Guid.NewGuid():N}";
            Directory.Move(target, old);
        }
        Directory.Move(tmp, target);
        if (old is not null) Directory.Delete(old, recursive: true);
    }

    public static (ModelConfig Config, torch.nn.Module Model) Load(string directory)
    {
        var loaded = Open(directory);
        return (loaded.Config, loaded.Model);
    }

    /// <summary>
    /// Loads a model directory: the configuration is validated and the model's size checked against the memory
    /// available before anything is allocated, then the weights are loaded (dtypes as <paramref name="policy"/> says).
    /// </summary>
    public static LoadedModel Open(string directory, WeightDTypePolicy policy = WeightDTypePolicy.Exact)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"model directory '{directory}' does not exist");
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"'{directory}' is not a model directory: {ConfigFile} is missing", configPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"'{directory}' is not a model directory: {WeightsFile} is missing", weightsPath);
        var config = ModelConfig.Load(configPath);
        var model = ModelFactory.Create(config);
        try
        {
            var report = StateDict.Load(model, weightsPath, policy);
            return new LoadedModel(config, model, report);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}

/// <summary>A model read from a directory, with what loading its weights reported.</summary>
public sealed record LoadedModel(ModelConfig Config, torch.nn.Module Model, StateDictLoadReport Report);
