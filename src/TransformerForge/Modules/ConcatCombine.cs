using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// A U-Net skip (Bao et al. 2022, "All are Worth Words: a ViT Backbone for Diffusion Models"; x-transformers 1.40's
/// <c>ConcatCombine</c>): the mirror layer's input concatenated with this layer's, projected back to the model width by
/// <c>combine</c> (no bias).
/// </summary>
public sealed class ConcatCombine : ForgeModule
{
    readonly Linear _combine;

    public ConcatCombine(int dim) : base(nameof(ConcatCombine))
    {
        register_module("combine", _combine = nn.Linear(dim * 2, dim, hasBias: false));
    }

    public Tensor Forward(Tensor x, Tensor skip) => _combine.forward(cat(new[] { skip, x }, -1));
}
