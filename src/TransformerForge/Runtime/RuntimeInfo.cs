using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Runtime;

/// <summary>A human-readable report of the loaded runtime (used by <c>tforge info</c> and the GPU check).</summary>
public static class RuntimeInfo
{
    public static IEnumerable<string> Describe(Device device)
    {
        TorchRuntime.EnsureLoaded();
        yield return $"TransformerForge {typeof(RuntimeInfo).Assembly.GetName().Version}";
        yield return $"TorchSharp {typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? typeof(torch).Assembly.GetName().Version?.ToString()}";
        yield return $".NET {RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} ({RuntimeInformation.ProcessArchitecture})";
        yield return $"backend: {TorchRuntime.Loaded} (libtorch from {TorchRuntime.LibTorchDir})";
        yield return $"shim: {TorchRuntime.ShimPath}{(TorchRuntime.ShimPatched ? $" (patched copy: {GlibcxxPatch.Version} requirement made weak; this libstdc++ predates GCC 13)" : "")}";
        yield return $"device: {device}";
        yield return $"cuda available: {cuda.is_available()}{(cuda.is_available() ? $", {cuda.device_count()} device(s)" : "")}";
        yield return $"threads: {get_num_threads()} intra-op, {Environment.ProcessorCount} logical processors, OpenMP wait policy {WaitPolicy()}";
        yield return $"MKL code path: {TorchRuntime.MklCodePath()?.ToString() ?? "unknown"} (0 = generic){(MklDispatch.Applied ? "; chosen by instruction set on this AMD CPU" : $"; MKL's own choice: {MklDispatch.NotAppliedBecause}")}";
        yield return "native libraries loaded:";
        foreach (var lib in TorchRuntime.TorchLibraries()) yield return $"  {lib}";
    }

    [DllImport("libc")]
    static extern IntPtr getenv(string name);

    static string WaitPolicy() =>
        (Marshal.PtrToStringAnsi(getenv("OMP_WAIT_POLICY")) is { } policy ? policy : "unset") +
        (Marshal.PtrToStringAnsi(getenv("GOMP_SPINCOUNT")) is { } spin ? $", spin count {spin}" : "") +
        (ThreadPolicy.IsAdaptive ? "; thread count adapts to the other processes' CPU use" : "; fixed thread count");
}
