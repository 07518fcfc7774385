namespace TransformerForge.Config;

/// <summary>A model configuration that cannot be built: the message names the offending key (and the file, when known).</summary>
public sealed class ConfigException(string key, string problem, string? file = null) : Exception(Compose(key, problem, file))
{
    /// <summary>The JSON key (with its path, e.g. <c>attn_layers.heads</c>) that is wrong, or empty for the whole config.</summary>
    public string Key { get; } = key;

    /// <summary>What is wrong, without the key or file.</summary>
    public string Problem { get; } = problem;

    /// <summary>The configuration file, when the configuration came from one.</summary>
    public string? File { get; } = file;

    /// <summary>The same error, located in <paramref name="file"/> (the key is named once, however often it is rethrown).</summary>
    public ConfigException InFile(string file) => File is null ? new ConfigException(Key, Problem, file) : this;

    static string Compose(string key, string problem, string? file) =>
        (file is null ? "" : $"{file}: ") + (string.IsNullOrEmpty(key) ? problem : $"config key '{key}': {problem}");
}
