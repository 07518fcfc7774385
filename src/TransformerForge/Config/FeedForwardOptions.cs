namespace TransformerForge.Config;

/// <summary>
/// The <c>ff_*</c> options: how every feed-forward block of a layer stack is built (x-transformers hands the
/// <c>ff_</c>-prefixed keywords, prefix trimmed, to each <c>FeedForward</c>). Its rows are spliced into
/// <see cref="AttentionLayersConfig.Table"/> and the record reaches <c>Modules.FeedForward</c> as it is.
/// </summary>
public sealed record FeedForwardOptions
{
    /// <summary>Hidden width as a multiple of the model width.</summary>
    public double Mult { get; init; } = 4;
    /// <summary>GLU variant (Shazeer 2020): the hidden layer gated by a second projection.</summary>
    public bool Glu { get; init; }
    /// <summary>Squared ReLU instead of GELU (So et al. 2021, Primer).</summary>
    public bool ReluSquared { get; init; }
    /// <summary>LayerNorm after the activation (NormFormer, Shleifer et al. 2021).</summary>
    public bool PostActLn { get; init; }
    /// <summary>Dropout on the hidden layer.</summary>
    public double Dropout { get; init; }

    public static readonly OptionTable<FeedForwardOptions> Table = new OptionTable<FeedForwardOptions>()
        .Double("ff_mult", o => o.Mult, (o, v) => o with { Mult = v })
        .Bool("ff_glu", o => o.Glu, (o, v) => o with { Glu = v })
        .Bool("ff_relu_squared", o => o.ReluSquared, (o, v) => o with { ReluSquared = v })
        .Bool("ff_post_act_ln", o => o.PostActLn, (o, v) => o with { PostActLn = v })
        .Double("ff_dropout", o => o.Dropout, (o, v) => o with { Dropout = v });

    /// <summary>Range checks; each names its key under <paramref name="prefix"/>.</summary>
    public void Validate(string prefix = "")
    {
        if (!(Mult > 0) || !double.IsFinite(Mult)) throw new ConfigException(prefix + "ff_mult", "must be a positive finite number");
        if (Dropout is < 0 or >= 1) throw new ConfigException(prefix + "ff_dropout", "must be in [0, 1)");
    }
}
