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
public abstract class ForgeModule : nn.Module
{
    static ForgeModule() => TorchRuntime.EnsureLoaded();

    protected ForgeModule(string name) : base(name) { }

    protected override void RegisterComponents() { }
}

/// <inheritdoc cref="ForgeModule"/>
public abstract class ForgeModule<T, TResult> : nn.Module<T, TResult>
{
    static ForgeModule() => TorchRuntime.EnsureLoaded();

    protected ForgeModule(string name) : base(name) { }

    protected override void RegisterComponents() { }
}
