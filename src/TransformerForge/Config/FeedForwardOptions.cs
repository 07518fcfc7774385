namespace TransformerForge.Config;

/// <summary>
/// The <c>ff_*</c> options: how every feed-forward block of a layer stack is built (x-transformers hands the
/// <c>ff_</c>-prefixed keywords, prefix trimmed, to each <c>FeedForward</c>). Its rows are spliced into
/// <see cref="AttentionLayersConfig.Table"/> and the record reaches <c>Modules.FeedForward</c> as it is.
/// </summary>
public sealed record FeedForwardOptions
{
    /// <summary>The x-transformers version whose layout the block follows (set by the layer stack, not a JSON key).</summary>
    public XTransformersVersion Version { get; init; }
    /// <summary>Whether this block follows x-transformers 1.40 (see <see cref="XTransformersVersion"/>).</summary>
    public bool IsV140 => Version == XTransformersVersion.V1_40;
    /// <summary>Hidden width as a multiple of the model width.</summary>
    public double Mult { get; init; } = 4;
    /// <summary>GLU variant (Shazeer 2020): the hidden layer gated by a second projection.</summary>
    public bool Glu { get; init; }
    /// <summary>Squared ReLU instead of GELU (So et al. 2021, Primer).</summary>
    public bool ReluSquared { get; init; }
    /// <summary>Swish (SiLU, Ramachandran et al. 2017) instead of GELU; with <see cref="Glu"/> it is SwiGLU (Shazeer 2020).</summary>
    public bool Swish { get; init; }
    /// <summary>No bias on the input and output projections (PaLM, LLaMA); a GLU's input projection keeps its bias, as in x-transformers 1.40.</summary>
    public bool NoBias { get; init; }
    /// <summary>LayerNorm after the activation (NormFormer, Shleifer et al. 2021).</summary>
    public bool PostActLn { get; init; }
    /// <summary>Dropout on the hidden layer.</summary>
    public double Dropout { get; init; }

    public static readonly OptionTable<FeedForwardOptions> Table = new OptionTable<FeedForwardOptions>()
        .Double("ff_mult", o => o.Mult, (o, v) => o with { Mult = v })
        .Bool("ff_glu", o => o.Glu, (o, v) => o with { Glu = v })
        .Bool("ff_relu_squared", o => o.ReluSquared, (o, v) => o with { ReluSquared = v })
        .Bool("ff_swish", o => o.Swish, (o, v) => o with { Swish = v }).Only(XTransformersVersion.V1_40)
        .Bool("ff_no_bias", o => o.NoBias, (o, v) => o with { NoBias = v }).Only(XTransformersVersion.V1_40)
        .Bool("ff_post_act_ln", o => o.PostActLn, (o, v) => o with { PostActLn = v })
        .Double("ff_dropout", o => o.Dropout, (o, v) => o with { Dropout = v });

    /// <summary>Range checks; each names its key under <paramref name="prefix"/>.</summary>
    public void Validate(string prefix = "")
    {
        Table.CheckVersion(this, new FeedForwardOptions { Version = Version }, Version, prefix);
        if (!(Mult > 0) || !double.IsFinite(Mult)) throw new ConfigException(prefix + "ff_mult", "must be a positive finite number");
        if (Dropout is < 0 or >= 1) throw new ConfigException(prefix + "ff_dropout", "must be in [0, 1)");
    }
}
