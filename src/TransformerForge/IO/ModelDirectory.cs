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

    public static (ModelConfig Config, torch.nn.Module Model) Load(string directory) => Load(directory, ModelFactory.Create);

    /// <summary>A saved token language model; any other model type is a <see cref="ConfigException"/> naming <c>type</c>.</summary>
    public static (ModelConfig Config, LanguageModel Model) LoadLanguageModel(string directory) => Load(directory, ModelFactory.CreateLanguageModel);

    static (ModelConfig Config, T Model) Load<T>(string directory, Func<ModelConfig, T> create) where T : torch.nn.Module
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"model directory '{directory}' does not exist");
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"'{directory}' is not a model directory: {ConfigFile} is missing", configPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"'{directory}' is not a model directory: {WeightsFile} is missing", weightsPath);
        var config = ModelConfig.Load(configPath);
        var model = create(config);
        try
        {
            StateDict.Load(model, weightsPath);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return (config, model);
    }
}
