using System.Runtime.CompilerServices;
using TransformerForge.Runtime;

namespace TransformerForge.Tests;

internal static class TestSetup
{
    /// <summary>
    /// Tests use TorchSharp directly too; load the runtime before any of them touches it. Tests also compare runs bit
    /// for bit (resume == uninterrupted, cache == recompute), and floating-point sums depend on how many threads split
    /// them: the suite keeps libtorch's thread count fixed rather than letting <see cref="ThreadPolicy"/> follow the
    /// machine's load (its choice is tested on its own).
    /// </summary>
    [ModuleInitializer]
    internal static void LoadRuntime()
    {
        Environment.SetEnvironmentVariable(ThreadPolicy.Env, "fixed");
        TorchRuntime.EnsureLoaded();
    }
}
