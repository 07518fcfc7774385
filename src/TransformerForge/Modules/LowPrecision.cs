using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Turns a module into a low-precision (bfloat16 or float16) working copy for mixed-precision training: parameters in
/// the low precision, so that matmuls and attention run in it, while floating buffers (rotary and sinusoidal
/// frequencies, convolution normalisers) stay float32: positions up to thousands are not representable in bfloat16's
/// 8 significant bits, and the modules compute angles from them before casting to the activations' dtype.
/// </summary>
public static class LowPrecision
{
    public static bool IsLow(ScalarType dtype) => dtype is ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>Converts <paramref name="module"/>'s parameters to <paramref name="dtype"/> in place, keeping float32 buffers float32.</summary>
    public static void Convert(nn.Module module, ScalarType dtype)
    {
        if (!IsLow(dtype)) throw new ArgumentException($"{dtype} is not a low-precision type (bfloat16, float16)");
        var keep = new List<(IBufferOwner Owner, string Name, Tensor Value)>();
        foreach (var (_, m) in module.named_modules())
        {
            if (m is not IBufferOwner owner) continue;
            foreach (var (name, buffer) in m.named_buffers(recurse: false))
                if (buffer.dtype == ScalarType.Float32) keep.Add((owner, name, buffer.clone().DetachFromDisposeScope()));
        }
        module.to(dtype);
        foreach (var (owner, name, value) in keep) owner.ReplaceBuffer(name, value);
    }
}
