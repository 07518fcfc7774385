using TorchSharp;
using static TorchSharp.torch;
using TransformerForge.Runtime;

namespace TransformerForge.Modules;

/// <summary>
/// Base of every TransformerForge module. Its static constructor loads the native runtime before TorchSharp's
/// first call (TorchSharp probes for its native library once, in its own static constructor, and would fail on
/// Debian 12 without <see cref="TorchRuntime"/>). Children are registered by hand under x-transformers' names, so
/// TorchSharp's field-name registration is switched off.
/// </summary>
public abstract class ForgeModule : nn.Module, IBufferOwner
{
    static ForgeModule() => TorchRuntime.EnsureLoaded();

    protected ForgeModule(string name) : base(name) { }

    protected override void RegisterComponents() { }

    void IBufferOwner.ReplaceBuffer(string name, Tensor value) =>
        _internal_buffers[name] = (value, _internal_buffers[name].Item2);
}

/// <inheritdoc cref="ForgeModule"/>
public abstract class ForgeModule<T, TResult> : nn.Module<T, TResult>, IBufferOwner
{
    static ForgeModule() => TorchRuntime.EnsureLoaded();

    protected ForgeModule(string name) : base(name) { }

    protected override void RegisterComponents() { }

    void IBufferOwner.ReplaceBuffer(string name, Tensor value) =>
        _internal_buffers[name] = (value, _internal_buffers[name].Item2);
}

/// <summary>A module whose registered buffers can be swapped for other tensors (see <see cref="LowPrecision"/>).</summary>
public interface IBufferOwner
{
    /// <summary>Makes <paramref name="value"/> the buffer registered as <paramref name="name"/> (persistence kept); modules read buffers by name.</summary>
    void ReplaceBuffer(string name, Tensor value);
}
