using System.Runtime.InteropServices;

namespace TransformerForge.Runtime;

/// <summary>
/// How many threads MKL's matrix products use, on the calling thread. libtorch sets MKL's count to its own intra-op
/// count, and once MKL chooses its kernels by instruction set (<see cref="MklDispatch"/>) it then splits even a
/// batch-1 decoding step's matrix-vector products over every thread: each split ends at an OpenMP barrier whose wake-up
/// costs more than the product. So a step of at most <see cref="SmallStepRows"/> rows runs its products on the calling
/// thread. Measured on 2 idle cores (docs/benchmarks.md): batch-1 cached generation 1.5x faster at dim 256, depth 4 and
/// 1.06x at dim 512, depth 8 than with the products split.
/// </summary>
public static class MklThreads
{
    /// <summary>Rows (sequences x new tokens) up to which a step's products stay on the calling thread.</summary>
    public const long SmallStepRows = 8;

    static (IntPtr SetLocal, IntPtr GetMax)? _functions;
    static bool _resolved;

    /// <summary>For a step computing <paramref name="rows"/> rows: on the calling thread when small; dispose to restore.</summary>
    public static Scope ForStep(long rows) => rows <= SmallStepRows ? OnCallingThread() : default;

    /// <summary>MKL's products on the calling thread until the scope is disposed (then the thread's previous setting).</summary>
    public static Scope OnCallingThread() => Functions() is { } f ? new Scope(SetLocal(f.SetLocal, 1), true) : default;

    /// <summary>The threads MKL's next product on this thread may use, or null where libtorch's MKL is not reachable.</summary>
    public static int? Current() => Functions() is { } f ? GetMax(f.GetMax) : null;

    /// <summary>Restores the calling thread's MKL thread count (0: back to the process-wide one).</summary>
    public readonly struct Scope(int previous, bool active) : IDisposable
    {
        public void Dispose()
        {
            if (active && Functions() is { } f) SetLocal(f.SetLocal, previous);
        }
    }

    static (IntPtr SetLocal, IntPtr GetMax)? Functions()
    {
        if (_resolved) return _functions;
        TorchRuntime.EnsureLoaded();
        if (TorchRuntime.LibTorchCpuHandle is { } h
            && NativeLibrary.TryGetExport(h, "MKL_Set_Num_Threads_Local", out var set)
            && NativeLibrary.TryGetExport(h, "MKL_Get_Max_Threads", out var get))
            _functions = (set, get);
        _resolved = true;
        return _functions;
    }

    static unsafe int SetLocal(IntPtr f, int threads) => ((delegate* unmanaged<int, int>)f)(threads);
    static unsafe int GetMax(IntPtr f) => ((delegate* unmanaged<int>)f)();
}
