namespace TransformerForge.Config;

/// <summary>
/// Which of x-transformers' layer-stack classes a configuration builds. The JSON keeps the Python class names exactly
/// (<c>"Encoder"</c>, <c>"Decoder"</c>, <c>"CrossAttender"</c>, <c>"AttentionLayers"</c>); anything else is refused.
/// </summary>
public enum LayerStackType
{
    /// <summary>Bidirectional self-attention (<c>Encoder</c>).</summary>
    Encoder,
    /// <summary>Causal self-attention (<c>Decoder</c>).</summary>
    Decoder,
    /// <summary>Cross-attention only (<c>CrossAttender</c>).</summary>
    CrossAttender,
    /// <summary>The plain stack, causal only when <c>causal</c> is set (<c>AttentionLayers</c>).</summary>
    AttentionLayers,
}

/// <summary>The JSON names of <see cref="LayerStackType"/>: one table, read and written both ways.</summary>
public static class LayerStackTypes
{
    static readonly (LayerStackType Type, string Name)[] Names =
    {
        (LayerStackType.Encoder, "Encoder"),
        (LayerStackType.Decoder, "Decoder"),
        (LayerStackType.CrossAttender, "CrossAttender"),
        (LayerStackType.AttentionLayers, "AttentionLayers"),
    };

    /// <summary>Every JSON name, in declaration order.</summary>
    public static IReadOnlyList<string> All { get; } = Names.Select(n => n.Name).ToArray();

    /// <summary>x-transformers' class name of <paramref name="type"/>; an undefined value (a bad cast) is an error naming <paramref name="key"/>.</summary>
    public static string JsonName(this LayerStackType type, string key = "type")
    {
        foreach (var (t, name) in Names)
            if (t == type) return name;
        throw new ConfigException(key, $"{(int)type} is not a layer-stack type (expected one of {string.Join(", ", All)})");
    }

    /// <summary>The type named exactly <paramref name="name"/> (case-sensitive, as in Python), or null.</summary>
    public static LayerStackType? TryParse(string? name)
    {
        foreach (var (t, n) in Names)
            if (n == name) return t;
        return null;
    }

    /// <summary>The type named exactly <paramref name="name"/>, or a <see cref="ConfigException"/> naming <paramref name="key"/>.</summary>
    public static LayerStackType Parse(string? name, string key = "type") =>
        TryParse(name) ?? throw new ConfigException(key,
            $"expected one of {string.Join(", ", All)}, got {(name is null ? "nothing" : $"'{name}'")}");
}
