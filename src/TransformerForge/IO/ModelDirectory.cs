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
        var (config, model, _) = Load(directory, ModelFactory.Create, WeightDTypePolicy.Exact);
        return (config, model);
    }

    /// <summary>A saved token language model; any other model type is a <see cref="ConfigException"/> naming <c>type</c>.</summary>
    public static (ModelConfig Config, LanguageModel Model) LoadLanguageModel(string directory)
    {
        var (config, model, _) = Load(directory, ModelFactory.CreateLanguageModel, WeightDTypePolicy.Exact);
        return (config, model);
    }

    /// <summary>
    /// Loads a model directory with a chosen weight dtype policy, and what loading the weights reported (e.g. the
    /// tensors widened from F16/BF16). The configuration is validated and the model's size checked against the memory
    /// available before anything is allocated.
    /// </summary>
    public static LoadedModel Open(string directory, WeightDTypePolicy policy = WeightDTypePolicy.Exact)
    {
        var (config, model, report) = Load(directory, ModelFactory.Create, policy);
        return new LoadedModel(config, model, report);
    }

    static (ModelConfig Config, T Model, StateDictLoadReport Report) Load<T>(string directory, Func<ModelConfig, T> create, WeightDTypePolicy policy)
        where T : torch.nn.Module
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
            return (config, model, StateDict.Load(model, weightsPath, policy));
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
