namespace TransformerForge.Config;

/// <summary>
/// Named starting points for <c>tforge train --preset</c>: decoder-only token models built in code, then sized with
/// <see cref="Create"/>'s arguments.
/// </summary>
public static class ModelPresets
{
    public const string Vanilla = "vanilla";
    public const string PrimerEz = "primer-ez";

    public static IReadOnlyList<string> Names { get; } = new[] { Vanilla, PrimerEz };

    /// <summary>Describes each preset in one line (for help texts).</summary>
    public static string Describe(string name) => Canonical(name) switch
    {
        Vanilla => "GPT-style decoder: pre-norm, GELU feed-forward, learned absolute positions",
        PrimerEz => "Primer EZ (So et al. 2021): the vanilla decoder with squared-ReLU feed-forward and multi-DConv-head attention",
        _ => throw Unknown(name),
    };

    /// <summary>The preset's model for a vocabulary of <paramref name="numTokens"/> and windows of up to <paramref name="maxSeqLen"/>.</summary>
    public static TransformerWrapperConfig Create(string name, int numTokens, int maxSeqLen, int dim, int depth, int heads)
    {
        var layers = new AttentionLayersConfig
        {
            Type = LayerStackType.Decoder,
            Dim = dim,
            Depth = depth,
            Heads = heads,
            // Heads split the model width rather than x-transformers' fixed 64 per head, so small models stay small.
            Attn = new AttentionOptions { DimHead = Math.Max(1, dim / heads) },
        };
        layers = Canonical(name) switch
        {
            Vanilla => layers,
            PrimerEz => layers with { PrimerEz = true },
            _ => throw Unknown(name),
        };
        var config = new TransformerWrapperConfig { NumTokens = numTokens, MaxSeqLen = maxSeqLen, AttnLayers = layers };
        config.Validate();
        return config;
    }

    static string Canonical(string name) => (name ?? throw new ArgumentNullException(nameof(name))).Trim().ToLowerInvariant() switch
    {
        "vanilla" or "decoder" => Vanilla,
        "primer-ez" or "primer_ez" or "primer" => PrimerEz,
        var other => other,
    };

    static ArgumentException Unknown(string name) =>
        new($"unknown preset '{name}'; known presets: {string.Join(", ", Names)}");
}
