namespace TransformerForge.Config;

/// <summary>
/// Named starting points for <c>tforge train --preset</c>: decoder-only token models built in code, then sized with
/// <see cref="Create"/>'s arguments.
/// </summary>
public static class ModelPresets
{
    public const string Vanilla = "vanilla";
    public const string PrimerEz = "primer-ez";
    public const string TransformerPlusPlus = "transformer++";

    public static IReadOnlyList<string> Names { get; } = new[] { Vanilla, PrimerEz, TransformerPlusPlus };

    /// <summary>Describes each preset in one line (for help texts).</summary>
    public static string Describe(string name) => Canonical(name) switch
    {
        Vanilla => "GPT-style decoder: pre-norm, GELU feed-forward, learned absolute positions",
        PrimerEz => "Primer EZ (So et al. 2021): the vanilla decoder with squared-ReLU feed-forward and multi-DConv-head attention",
        TransformerPlusPlus => "Transformer++ (Archai's tfpp, CodeGen layout): each layer's heads shared among rotary attention (1/2), SGConv (1/4) and local attention (1/4)",
        _ => throw Unknown(name),
    };

    /// <summary>The preset's model for a vocabulary of <paramref name="numTokens"/> and windows of up to <paramref name="maxSeqLen"/>.</summary>
    public static ModelConfig Create(string name, int numTokens, int maxSeqLen, int dim, int depth, int heads)
    {
        if (Canonical(name) == TransformerPlusPlus) return CreateTransformerPlusPlus(numTokens, maxSeqLen, dim, depth, heads);
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

    /// <summary>
    /// Transformer++ with every layer alike: half the heads (at least one) rotary attention, a quarter SGConv (kernels of
    /// 64 taps doubling up to the sequence), a quarter local attention (windows of 64); with fewer than 4 heads, half
    /// SGConv and no local attention. CodeGen's parallel block, feed-forward 4 · dim.
    /// </summary>
    static TransformerPlusPlusConfig CreateTransformerPlusPlus(int numTokens, int maxSeqLen, int dim, int depth, int heads)
    {
        if (depth < 1) throw new ConfigException("depth", $"must be a positive integer, got {depth}");
        if (heads < 1) throw new ConfigException("heads", $"must be a positive integer, got {heads}");
        int sgconv = heads >= 4 ? heads / 4 : heads / 2, local = heads >= 4 ? heads / 4 : 0, mha = heads - sgconv - local;
        var mixers = new List<MixerHeads> { new("mha", mha) };
        if (sgconv > 0) mixers.Add(new("sgconv", sgconv));
        if (local > 0) mixers.Add(new("local_attn", local));
        var layer = new TransformerPlusPlusLayer
        {
            Heads = heads,
            FfInnerDim = 4 * dim,
            Mixers = mixers,
            SGConvKernelSize = sgconv > 0 ? Math.Min(64, maxSeqLen) : null,
            LocalAttnWindowSize = local > 0 ? 64 : null,
        };
        var config = new TransformerPlusPlusConfig
        {
            NumTokens = numTokens, MaxSeqLen = maxSeqLen, Dim = dim, Layers = Enumerable.Repeat(layer, depth).ToList(),
        };
        config.Validate();
        return config;
    }

    static string Canonical(string name) => (name ?? throw new ArgumentNullException(nameof(name))).Trim().ToLowerInvariant() switch
    {
        "vanilla" or "decoder" => Vanilla,
        "primer-ez" or "primer_ez" or "primer" => PrimerEz,
        "transformer++" or "transformer-plus-plus" or "tfpp" => TransformerPlusPlus,
        var other => other,
    };

    static ArgumentException Unknown(string name) =>
        new($"unknown preset '{name}'; known presets: {string.Join(", ", Names)}");
}
