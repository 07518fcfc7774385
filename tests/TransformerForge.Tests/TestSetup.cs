using System.Runtime.CompilerServices;
using TransformerForge.Runtime;

namespace TransformerForge.Tests;

internal static class TestSetup
{
    /// <summary>Tests use TorchSharp directly too; load the runtime before any of them touches it.</summary>
    [ModuleInitializer]
    internal static void LoadRuntime() => TorchRuntime.EnsureLoaded();
}
