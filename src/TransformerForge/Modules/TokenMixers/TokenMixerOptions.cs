namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// What a layer's token mixers read: the layer's width and heads, the longest sequence (SGConv's kernel length, LSH's
/// automatic bucket count), mha's rotary features, and each mixer's own sizes (Archai's per-op arch configs). A size
/// left null is an error only for a mixer that needs it.
/// </summary>
public sealed record TokenMixerOptions
{
    /// <summary>Width of the layer.</summary>
    public required int Dim { get; init; }
    /// <summary>Heads of the layer, shared out among its mixers.</summary>
    public required int Heads { get; init; }
    /// <summary>Width of a head.</summary>
    public int DimHead => Dim / Heads;
    /// <summary>Longest sequence the model takes.</summary>
    public int MaxSeqLen { get; init; } = 1024;
    /// <summary>mha: features of each query/key head rotated by rotary embeddings (0: none).</summary>
    public int RotaryDim { get; init; }
    /// <summary>sep_conv1d: taps of the depth-wise convolution.</summary>
    public int? SepConvKernelSize { get; init; }
    /// <summary>sgconv: taps of the kernel's first scale.</summary>
    public int? SGConvKernelSize { get; init; }
    /// <summary>sgconv3: taps of the kernels' first scale.</summary>
    public int? SGConv3KernelSize { get; init; }
    /// <summary>local_attn: positions a query looks back.</summary>
    public int? LocalAttnWindowSize { get; init; }
    /// <summary>lsh_attn: hash rounds.</summary>
    public int? LshNumHashes { get; init; }
    /// <summary>lsh_attn: positions per chunk of a bucket.</summary>
    public int? LshBucketSize { get; init; }
    /// <summary>lsh_attn: buckets per round (null: Hugging Face's automatic choice for <see cref="MaxSeqLen"/>).</summary>
    public int? LshNumBuckets { get; init; }
    /// <summary>lsh_attn: seed of the rotations used in evaluation.</summary>
    public int LshHashSeed { get; init; }
}
