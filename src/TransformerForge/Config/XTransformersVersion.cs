using System.Text.Json;

namespace TransformerForge.Config;

/// <summary>
/// Which x-transformers release a configuration means. Defaults, module layout and parameter names differ between
/// them (1.40: bias-less norms with a unit offset, the final norm inside the layer stack, <c>token_emb.emb</c>,
/// interleaved rotary on queries and keys only, softmax in float32, ...), so the model JSON says which one it follows:
/// <c>"x_transformers_version": "1.40"</c> at its top level. Without the key a configuration is 0.20, as it always was.
/// </summary>
public enum XTransformersVersion
{
    /// <summary>x-transformers 0.20 (the seed's version; the default).</summary>
    V0_20,
    /// <summary>x-transformers 1.40 (1.40.11): grouped-query attention, qk-norm, SwiGLU, ResiDual, ...</summary>
    V1_40,
}

public static class XTransformersVersions
{
    /// <summary>The top-level JSON key that selects the version.</summary>
    public const string Key = "x_transformers_version";

    public static string JsonName(this XTransformersVersion v) => v switch
    {
        XTransformersVersion.V0_20 => "0.20",
        XTransformersVersion.V1_40 => "1.40",
        _ => throw new ArgumentOutOfRangeException(nameof(v)),
    };

    /// <summary>"0.20" or "1.40" (a patch release such as "1.40.11" names the same semantics).</summary>
    public static XTransformersVersion Parse(string? s, string key = Key)
    {
        var m = System.Text.RegularExpressions.Regex.Match(s ?? "", @"^(0\.20|1\.40)(\.\d+)?$");
        if (!m.Success) throw new ConfigException(key, $"expected \"0.20\" or \"1.40\", got {(s is null ? "nothing" : $"\"{s}\"")}");
        return m.Groups[1].Value == "1.40" ? XTransformersVersion.V1_40 : XTransformersVersion.V0_20;
    }

    /// <summary>The version a model JSON object names at its top level (0.20 when it names none).</summary>
    public static XTransformersVersion Read(JsonElement obj)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(Key, out var v)) return XTransformersVersion.V0_20;
        if (v.ValueKind != JsonValueKind.String) throw new ConfigException(Key, $"expected a string (\"0.20\" or \"1.40\"), got {OptionTable<object>.Describe(v)}");
        return Parse(v.GetString());
    }

    /// <summary>
    /// The version a parity fixture's <c>source</c> names ("x-transformers 1.40.11, eval mode, ..."); 0.20 when it
    /// names none. A release this project does not reproduce is <see cref="NotSupportedException"/>.
    /// </summary>
    public static XTransformersVersion FromSource(string? source)
    {
        var m = System.Text.RegularExpressions.Regex.Match(source ?? "", @"x-transformers (\d+)\.(\d+)");
        if (!m.Success) return XTransformersVersion.V0_20;
        return (m.Groups[1].Value, m.Groups[2].Value) switch
        {
            ("0", "20") => XTransformersVersion.V0_20,
            ("1", "40") => XTransformersVersion.V1_40,
            var (major, minor) => throw new NotSupportedException($"x-transformers {major}.{minor} (this project reproduces 0.20 and 1.40)"),
        };
    }
}
