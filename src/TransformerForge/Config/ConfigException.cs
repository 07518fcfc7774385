namespace TransformerForge.Config;

/// <summary>A model configuration that cannot be built: the message names the offending key.</summary>
public sealed class ConfigException(string key, string message)
    : Exception(string.IsNullOrEmpty(key) ? message : $"config key '{key}': {message}")
{
    /// <summary>The JSON key (with its path, e.g. <c>attn_layers.heads</c>) that is wrong, or empty for the whole config.</summary>
    public string Key { get; } = key;
}
