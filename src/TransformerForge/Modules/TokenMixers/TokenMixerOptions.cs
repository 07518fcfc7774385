namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// What Archai's ops read besides their head counts: each op's arch config (kernel size, window size) and the Hugging
/// Face config values (<c>max_position_embeddings</c> for SGConv's kernel length, <c>rotary_dim</c> for mha).
/// </summary>
public sealed record TokenMixerOptions(
    int HiddenSize,
    int TotalHeads,
    int MaxPositionEmbeddings = 1024,
    int RotaryDim = 0,
    int SepConvKernelSize = 3,
    int SGConvKernelSize = 64,
    int WindowSize = 256);
