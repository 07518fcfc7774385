namespace TransformerForge.Modules.TokenMixers;

/// <summary>Builds a token mixer from its Archai op name (<c>OPS</c> in tfpp/ops).</summary>
public static class TokenMixerFactory
{
    public static readonly IReadOnlyList<string> OpNames = ["mha", "sep_conv1d", "sgconv", "sgconv3", "local_attn"];

    public static TokenMixer Create(string op, int opHeads, TokenMixerOptions o) => op switch
    {
        "mha" => new RotaryMultiHeadAttention(o.HiddenSize, o.TotalHeads, opHeads, o.RotaryDim),
        "sep_conv1d" => new SeparableConv1d(o.HiddenSize, o.TotalHeads, opHeads, o.SepConvKernelSize),
        "sgconv" => new SGConv(o.HiddenSize, o.TotalHeads, opHeads, o.SGConvKernelSize, o.MaxPositionEmbeddings),
        "sgconv3" => new SGConv(o.HiddenSize, o.TotalHeads, opHeads, o.SGConvKernelSize, o.MaxPositionEmbeddings, h3: true),
        "local_attn" => new LocalAttention(o.HiddenSize, o.TotalHeads, opHeads, o.WindowSize),
        _ => throw new NotSupportedException($"Archai op '{op}' (known: {string.Join(", ", OpNames)})"),
    };
}
