using System.Reflection;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace TransformerForge.Modules;

/// <summary>
/// Frees the tensor TorchSharp keeps per output of a custom autograd node. For every <c>Function.apply</c>, TorchSharp
/// (0.107) allocates an empty tensor shaped like each output and holds it until the graph is freed, only to hand
/// backward zeros of that shape when an output's gradient is undefined. A node that turns that off
/// (<c>ctx.set_materialize_grads(false)</c>, after which TorchSharp never reads the tensor) can drop it here right
/// after <c>apply</c>. There is no public API for it, so this reaches TorchSharp's private fields; where they are not
/// found (another TorchSharp version) it does nothing and says so.
/// </summary>
internal static class AutogradOutputCache
{
    private const BindingFlags Private = BindingFlags.NonPublic | BindingFlags.Instance;
    private static readonly FieldInfo? ContextNode = typeof(AutogradContext).GetField("_node", Private);

    /// <summary>Disposes the cached output tensors of the node behind <paramref name="context"/>; false if not found.</summary>
    public static bool Drop(AutogradContext context)
    {
        var node = ContextNode?.GetValue(context);
        if (node?.GetType().GetField("_outputCache", Private)?.GetValue(node) is not List<Tensor> cache) return false;
        for (var i = 0; i < cache.Count; i++)
        {
            cache[i]?.Dispose();
            cache[i] = null!;
        }
        return true;
    }
}
