using System.Runtime.InteropServices;
using TorchSharp;
using TransformerForge.Models;

namespace TransformerForge.Runtime;

/// <summary>A model (or batch) whose estimated memory exceeds what the device has free; refused before allocating.</summary>
public sealed class MemoryLimitException(string message, MemoryEstimate estimate, long availableBytes) : Exception(message)
{
    public MemoryEstimate Estimate { get; } = estimate;
    public long AvailableBytes { get; } = availableBytes;
}

/// <summary>
/// Compares a <see cref="MemoryEstimate"/> with the memory a device has free, so that a model too large for the
/// machine is refused with its estimate instead of being killed by the kernel or aborting in libtorch's allocator.
/// CPU: the smaller of <c>MemAvailable</c> (<c>/proc/meminfo</c>) and what the cgroup limit leaves. CUDA: the device's
/// free memory from the CUDA runtime (TorchSharp does not expose it), when the runtime library can be found.
/// <c>TFORGE_MEMORY_CHECK=0</c> turns the check off; <c>TFORGE_MEMORY_AVAILABLE=BYTES</c> overrides what is available.
/// </summary>
public static class MemoryGuard
{
    public const string CheckEnv = "TFORGE_MEMORY_CHECK";
    public const string AvailableEnv = "TFORGE_MEMORY_AVAILABLE";

    /// <summary>Throws <see cref="MemoryLimitException"/> when <paramref name="estimate"/> exceeds what <paramref name="device"/> has free.</summary>
    public static void EnsureFits(MemoryEstimate estimate, torch.Device? device, string what)
    {
        if (Environment.GetEnvironmentVariable(CheckEnv) is "0" or "false" or "off") return;
        var (available, source) = Available(device);
        if (available is { } free) EnsureFits(estimate, free, source, what);
    }

    /// <summary>The comparison itself, with the available bytes given (testable without a full machine).</summary>
    public static void EnsureFits(MemoryEstimate estimate, long availableBytes, string source, string what)
    {
        if (estimate.TotalBytes <= availableBytes) return;
        throw new MemoryLimitException(
            $"{what} needs {estimate.Describe()}, but only {MemoryEstimate.Bytes(availableBytes)} is available ({source}); " +
            "use a smaller model, batch or sequence length", estimate, availableBytes);
    }

    /// <summary>Free bytes on <paramref name="device"/> and where the figure came from; null when it cannot be known.</summary>
    public static (long? Bytes, string Source) Available(torch.Device? device)
    {
        if (Environment.GetEnvironmentVariable(AvailableEnv) is { } forced && long.TryParse(forced, out var bytes))
            return (bytes, AvailableEnv);
        if (device is not null && device.type == DeviceType.CUDA)
            return (CudaFree(device.index < 0 ? 0 : device.index), "free memory of " + device);
        return CpuAvailable();
    }

    static (long? Bytes, string Source) CpuAvailable()
    {
        long? available = null;
        string source = "MemAvailable in /proc/meminfo";
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], out var kb))
                    available = kb * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        // A container's limit (cgroup v2) can be far below the machine's free memory.
        if (ReadLong("/sys/fs/cgroup/memory.max") is { } max && ReadLong("/sys/fs/cgroup/memory.current") is { } current)
        {
            long left = Math.Max(0, max - current);
            if (available is null || left < available) (available, source) = (left, "the cgroup memory limit");
        }
        return (available, source);
    }

    static long? ReadLong(string path)
    {
        try { return File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), out var v) ? v : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    // ---- CUDA: cudaMemGetInfo from the runtime library libtorch_cuda was linked against --------------------------

    delegate int MemGetInfo(out nuint free, out nuint total);
    delegate int GetDevice(out int device);
    delegate int SetDevice(int device);

    static long? CudaFree(int index)
    {
        var lib = CudaRuntime();
        if (lib == IntPtr.Zero) return null;
        try
        {
            var getInfo = Marshal.GetDelegateForFunctionPointer<MemGetInfo>(NativeLibrary.GetExport(lib, "cudaMemGetInfo"));
            var get = Marshal.GetDelegateForFunctionPointer<GetDevice>(NativeLibrary.GetExport(lib, "cudaGetDevice"));
            var set = Marshal.GetDelegateForFunctionPointer<SetDevice>(NativeLibrary.GetExport(lib, "cudaSetDevice"));
            if (get(out var current) != 0) return null;
            if (current != index && set(index) != 0) return null;
            try { return getInfo(out var free, out _) == 0 ? (long)free : null; }
            finally { if (current != index) set(current); }
        }
        catch (EntryPointNotFoundException) { return null; }
    }

    static IntPtr _cudart;

    static IntPtr CudaRuntime()
    {
        if (_cudart != IntPtr.Zero) return _cudart;
        var dirs = new List<string?> { TorchRuntime.LibTorchDir };
        if (TorchRuntime.LibTorchDir is { } lib)
        {
            // A pip-installed torch keeps the CUDA runtime in site-packages/nvidia/cuda_runtime/lib.
            var sitePackages = Path.GetDirectoryName(Path.GetDirectoryName(lib));
            if (sitePackages is not null) dirs.Add(Path.Combine(sitePackages, "nvidia", "cuda_runtime", "lib"));
        }
        foreach (var name in new[] { "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so" })
        {
            foreach (var dir in dirs)
                if (dir is not null && NativeLibrary.TryLoad(Path.Combine(dir, name), out var h)) return _cudart = h;
            if (NativeLibrary.TryLoad(name, out var handle)) return _cudart = handle;
        }
        return IntPtr.Zero;
    }
}
