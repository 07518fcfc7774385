// Added by TransformerForge's build/TransformerForge.targets: attaches TransformerForge's libtorch loader to TorchSharp
// before any code of this application runs (see TorchRuntime.Attach). It loads nothing until torch is first used.
internal static class TransformerForgeAttach
{
#pragma warning disable CA2255
    [System.Runtime.CompilerServices.ModuleInitializer]
#pragma warning restore CA2255
    internal static void Attach() => TransformerForge.Runtime.TorchRuntime.Attach();
}
