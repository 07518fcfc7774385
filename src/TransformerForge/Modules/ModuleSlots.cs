using TorchSharp;

namespace TransformerForge.Modules;

/// <summary>
/// A container whose children sit at fixed indices with gaps: PyTorch's <c>ModuleList</c> holding <c>None</c> entries,
/// as x-transformers 1.40 builds its per-layer norms (<c>[pre, post-branch, post-main]</c>) and its U-Net skip
/// combiners. Only present children are registered, so weight names keep x-transformers' indices.
/// </summary>
public sealed class ModuleSlots : ForgeModule
{
    public ModuleSlots(params torch.nn.Module?[] slots) : base(nameof(ModuleSlots))
    {
        for (int i = 0; i < slots.Length; i++)
            if (slots[i] is { } m) register_module(i.ToString(), m);
    }

    /// <summary>Children under names, the absent ones left out (e.g. 1.40's <c>attend</c> holding optional talking-heads mixers).</summary>
    public ModuleSlots(params (string Name, torch.nn.Module? Module)[] slots) : base(nameof(ModuleSlots))
    {
        foreach (var (name, m) in slots)
            if (m is not null) register_module(name, m);
    }
}
