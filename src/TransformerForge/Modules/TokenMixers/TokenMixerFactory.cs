namespace TransformerForge.Modules.TokenMixers;

/// <summary>Builds a token mixer from its Archai op name (<c>OPS</c> in tfpp/ops).</summary>
public static class TokenMixerFactory
{
    public static readonly IReadOnlyList<string> OpNames = ["mha", "sep_conv1d", "sgconv", "sgconv3", "local_attn", "lsh_attn"];

    /// <summary>The mixer <paramref name="op"/> owning <paramref name="heads"/> of the layer's heads.</summary>
    public static TokenMixer Create(string op, int heads, TokenMixerOptions o) => op switch
    {
        "mha" => new RotaryMultiHeadAttention(o.Dim, o.DimHead, heads, o.RotaryDim),
        "sep_conv1d" => new SeparableConv1d(o.Dim, o.DimHead, heads, Need(o.SepConvKernelSize, op, "kernel size")),
        "sgconv" => new SGConv(o.Dim, o.DimHead, heads, Need(o.SGConvKernelSize, op, "kernel size"), o.MaxSeqLen),
        "sgconv3" => new SGConv(o.Dim, o.DimHead, heads, Need(o.SGConv3KernelSize, op, "kernel size"), o.MaxSeqLen, h3: true),
        "local_attn" => new LocalAttention(o.Dim, o.DimHead, heads, Need(o.LocalAttnWindowSize, op, "window size")),
        "lsh_attn" => new LshAttention(o.Dim, o.DimHead, heads, Need(o.LshNumHashes, op, "number of hashes"), Need(o.LshBucketSize, op, "bucket size"),
            o.LshNumBuckets is { } nb ? [nb] : LshSelfAttention.AutoBuckets(o.MaxSeqLen, o.LshBucketSize!.Value), o.LshHashSeed),
        _ => throw new NotSupportedException($"Archai op '{op}' (known: {string.Join(", ", OpNames)})"),
    };

    static int Need(int? value, string op, string what) =>
        value ?? throw new ArgumentException($"the {op} mixer needs its {what}");
}
