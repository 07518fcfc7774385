namespace TransformerForge.Modules;

/// <summary>How the depth-wise convolution kernels of Multi-DConv-Head Attention are laid out.</summary>
public enum DConvKernelLayout
{
    /// <summary>
    /// One kernel per channel of a head (d_k kernels), the same kernels applied to every head. This is labml's
    /// <c>SpatialDepthWiseConvolution(d_k)</c>.
    /// </summary>
    SharedByHeads,

    /// <summary>
    /// One kernel per channel of the whole projection (heads·d_k kernels), as described in Primer
    /// (So et al. 2021, section 3: "a 3x1 depthwise convolution after each of the multi-head projections").
    /// </summary>
    PerChannel,
}
