using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Runtime;

/// <summary>Which libtorch to load: the bundled CPU build, or a CUDA build found on the machine.</summary>
public enum Backend { Cpu, Cuda }

/// <summary>Raised when the native runtime cannot be loaded; the message says what is missing and how to fix it.</summary>
public sealed class TorchRuntimeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Owns loading of libtorch and TorchSharp's native shim (<c>libLibTorchSharp.so</c>) — the only place that does.
/// <list type="bullet">
/// <item>CPU: the <c>libtorch-cpu-linux-x64</c> package's libraries from the app's native folder (or the NuGet cache).</item>
/// <item>CUDA: a CUDA libtorch from <c>TFORGE_LIBTORCH</c> (a <c>torch/lib</c> folder) or from the <c>torch</c> package of
/// the <c>python3</c> on PATH.</item>
/// </list>
/// The libtorch libraries are loaded first by full path, then the shim (a patched copy when <see cref="GlibcxxPatch"/>
/// says it is needed and safe). A DllImport resolver hands TorchSharp that already-loaded shim, so loading happens
/// on first use even if the caller never calls <see cref="Initialize"/>; call it first to pick CUDA.
/// </summary>
public static class TorchRuntime
{
    public const string LibTorchEnv = "TFORGE_LIBTORCH";
    public const string CacheEnv = "TFORGE_CACHE";
    const string ShimFile = "libLibTorchSharp.so";

    static readonly object Gate = new();
    static readonly Dictionary<string, IntPtr> Handles = new(StringComparer.Ordinal);
    static Backend? _loaded;

    /// <summary>The backend that was loaded, or null before the first load.</summary>
    public static Backend? Loaded => _loaded;
    /// <summary>Path of the shim that was loaded, and whether it is the patched copy.</summary>
    public static string? ShimPath { get; private set; }
    public static bool ShimPatched { get; private set; }
    /// <summary>Folder the libtorch libraries came from.</summary>
    public static string? LibTorchDir { get; private set; }

    // A library module initializer is deliberate here: the hooks must be in place before TorchSharp's first native call.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void RegisterResolver()
    {
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // The application set its own resolver for TorchSharp; it then owns loading.
        }
        // TorchSharp loads its shim itself (NativeLibrary.TryLoad by name, which no DllImport resolver sees) the first
        // time any torch function runs. Where that fails (an old libstdc++), the runtime raises this event: load the
        // CPU backend our way then. Lazy, so an application can still choose CUDA first with Initialize(Backend.Cuda).
        AssemblyLoadContext.Default.ResolvingUnmanagedDll += (assembly, name) =>
            name == "LibTorchSharp" && assembly == typeof(torch).Assembly ? Resolve(name, assembly, null) : IntPtr.Zero;
    }

    /// <summary>
    /// Makes sure this library's loader is attached to TorchSharp (its module initializer has run), so that an
    /// application's first TorchSharp call — even <c>torch.manual_seed</c> before any TransformerForge type is used —
    /// loads libtorch correctly. Costs nothing and loads nothing. Applications that reference the TransformerForge
    /// package (or import <c>build/TransformerForge.targets</c>) get a call compiled in; others call it first thing.
    /// </summary>
    public static void Attach() { }

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != "LibTorchSharp") return IntPtr.Zero;
        lock (Gate)
        {
            if (!Handles.ContainsKey(ShimFile)) EnsureLoaded();
            return Handles[ShimFile];
        }
    }

    /// <summary>Loads the CPU backend unless one is already loaded. Safe to call many times.</summary>
    public static void EnsureLoaded() => Initialize(_loaded ?? Backend.Cpu);

    /// <summary>Loads the given backend. A process holds one libtorch: asking for the other one after loading is an error.</summary>
    public static void Initialize(Backend backend)
    {
        lock (Gate)
        {
            if (_loaded is { } have)
            {
                if (have != backend)
                    throw new TorchRuntimeException($"libtorch for {have} is already loaded in this process; choose the device before any tensor is created.");
                return;
            }
            if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
                throw new TorchRuntimeException("TransformerForge's runtime loader supports linux-x64 only.");

            ChooseWaitPolicy();
            MklDispatch.BeforeLibTorchLoads(CacheDir());
            if (backend == Backend.Cuda) LoadCuda(); else LoadCpu();
            _loaded = backend;
            // Let TorchSharp record the backend as loaded; its own probing resolves to what we loaded.
            torch.InitializeDeviceType(backend == Backend.Cuda ? DeviceType.CUDA : DeviceType.CPU);
        }
    }

    /// <summary>
    /// How libtorch's OpenMP threads wait at a barrier, unless the user chose (<c>OMP_WAIT_POLICY</c> or
    /// <c>GOMP_SPINCOUNT</c>): a bounded spin, 10,000 rounds (tens of microseconds), then sleep. libgomp's own default
    /// spins 300,000 rounds (~3 ms), and beside other busy processes spinning threads starve the working ones (cached
    /// generation 10x slower at load 25-40); sleeping at once (<c>OMP_WAIT_POLICY=PASSIVE</c>, the former default)
    /// pays a wake-up per operation, which small operations (a decoding step's) pay hundreds of times. Measured side by
    /// side on 2 cores (docs/benchmarks.md), with <see cref="ThreadPolicy"/>'s adaptive thread count: batch-1 cached
    /// generation 1.25x faster idle and 1.14x beside a busy process than sleeping at once; training the same. Under
    /// heavy load the adaptive count drops to one thread, where no thread waits at all. libgomp reads the setting once,
    /// when libtorch loads it, so this runs before that (and in the native environment, which .NET's
    /// Environment.SetEnvironmentVariable does not change on Linux).
    /// </summary>
    public const string DefaultSpinCount = "10000";

    static void ChooseWaitPolicy()
    {
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null && Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is null)
            setenv("GOMP_SPINCOUNT", DefaultSpinCount, 0);
    }

    [DllImport("libc", CharSet = CharSet.Ansi)]
    static extern int setenv(string name, string value, int overwrite);

    /// <summary>Parses <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>, loads the matching backend and returns the device.</summary>
    public static Device SelectDevice(string spec)
    {
        var s = spec.Trim().ToLowerInvariant();
        if (s == "cpu") { Initialize(Backend.Cpu); return CPU; }
        if (s == "cuda" || s.StartsWith("cuda:"))
        {
            Initialize(Backend.Cuda);
            if (!cuda.is_available()) throw new TorchRuntimeException("CUDA libtorch loaded but no CUDA device is available.");
            return new Device(s);
        }
        throw new ArgumentException($"unknown device '{spec}': use cpu, cuda or cuda:N");
    }

    static void LoadCpu()
    {
        var dir = FindDir("libtorch_cpu.so", "libtorch-cpu-linux-x64", "2.10.0")
            ?? throw new TorchRuntimeException(
                "libtorch_cpu.so was not found next to the application nor in the NuGet cache. Reference the " +
                "'libtorch-cpu-linux-x64' 2.10.0 package (and run 'dotnet restore').");
        LibTorchDir = dir;
        foreach (var lib in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" }) Load(Path.Combine(dir, lib));
        LoadShim();
    }

    static void LoadCuda()
    {
        var dir = FindCudaLibTorch(out var how)
            ?? throw new TorchRuntimeException(
                $"No CUDA libtorch found. Set {LibTorchEnv}=/path/to/torch/lib, or make 'python3 -c \"import torch\"' work " +
                $"with a CUDA build of PyTorch. ({how})");
        LibTorchDir = dir;
        foreach (var lib in new[] { "libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so" })
        {
            var p = Path.Combine(dir, lib);
            if (File.Exists(p)) Load(p);
            else if (lib.Contains("cuda")) throw new TorchRuntimeException($"{p} is missing: {dir} is not a CUDA build of libtorch.");
        }
        LoadShim();
    }

    /// <summary>Loads TorchSharp's shim, patching a copy first if this system's libstdc++ is too old (see <see cref="GlibcxxPatch"/>).</summary>
    static void LoadShim()
    {
        var original = FindFile(ShimFile, "torchsharp", "0.107.0")
            ?? throw new TorchRuntimeException($"{ShimFile} was not found next to the application nor in the NuGet cache; reference the 'TorchSharp' package.");
        var info = ElfVersionInfo.Read(original);
        var missing = GlibcxxPatch.MissingVersions(info, LoadedLibraryPath);
        if (missing.Count == 0)
        {
            Load(original, ShimFile);
            ShimPath = original;
            return;
        }
        var why = GlibcxxPatch.WhyUnsafe(info, missing);
        if (why is not null)
            throw new TorchRuntimeException(
                $"{original} cannot load on this system: {why}. Install a newer libstdc++ (GCC 13 or later, e.g. from a newer " +
                "distribution) or use a TorchSharp build linked against this system's C++ runtime.");

        var bytes = File.ReadAllBytes(original);
        var patched = GlibcxxPatch.Apply(bytes, missing[0]);
        var target = Path.Combine(CacheDir(), "native", GlibcxxPatch.Sha256(bytes)[..16], ShimFile);
        if (!File.Exists(target) || GlibcxxPatch.Sha256(File.ReadAllBytes(target)) != GlibcxxPatch.Sha256(patched))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var tmp = $"{target}.{Environment.ProcessId}.tmp";
            File.WriteAllBytes(tmp, patched);
            File.Move(tmp, target, overwrite: true); // atomic: concurrent processes never see a half-written copy
        }
        Load(target, ShimFile);
        ShimPath = target;
        ShimPatched = true;
    }

    static void Load(string path, string? key = null)
    {
        try
        {
            Handles[key ?? Path.GetFileName(path)] = NativeLibrary.Load(path);
        }
        catch (Exception e)
        {
            throw new TorchRuntimeException($"Failed to load {path}: {e.Message}", e);
        }
    }

    static string CacheDir()
    {
        var env = Environment.GetEnvironmentVariable(CacheEnv);
        if (!string.IsNullOrEmpty(env)) return env;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var root = !string.IsNullOrEmpty(xdg) ? xdg : !string.IsNullOrEmpty(home) ? Path.Combine(home, ".cache") : Path.GetTempPath();
        return Path.Combine(root, "transformerforge");
    }

    /// <summary>Folders where the NuGet-packaged natives may be: next to the app, in runtimes/, or in the NuGet cache.</summary>
    static IEnumerable<string> Candidates(string package, string version)
    {
        var bases = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? "" };
        foreach (var b in bases.Where(b => b.Length > 0).Distinct())
        {
            yield return b;
            yield return Path.Combine(b, "runtimes", "linux-x64", "native");
        }
        var nuget = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(nuget))
            nuget = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        yield return Path.Combine(nuget, package, version, "runtimes", "linux-x64", "native");
    }

    static string? FindDir(string file, string package, string version) =>
        Candidates(package, version).FirstOrDefault(d => File.Exists(Path.Combine(d, file)));

    static string? FindFile(string file, string package, string version) =>
        FindDir(file, package, version) is { } d ? Path.Combine(d, file) : null;

    static string? FindCudaLibTorch(out string how)
    {
        var env = Environment.GetEnvironmentVariable(LibTorchEnv);
        if (!string.IsNullOrEmpty(env))
        {
            how = $"{LibTorchEnv}={env}";
            return File.Exists(Path.Combine(env, "libtorch_cuda.so")) ? env
                : throw new TorchRuntimeException($"{LibTorchEnv}={env} does not contain libtorch_cuda.so.");
        }
        try
        {
            var psi = new ProcessStartInfo("python3", "-c \"import torch,os;print(os.path.dirname(torch.__file__))\"")
            { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var outp = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit(60_000);
            how = $"python3 torch package: '{outp}'";
            var lib = Path.Combine(outp, "lib");
            return p.ExitCode == 0 && File.Exists(Path.Combine(lib, "libtorch_cuda.so")) ? lib : null;
        }
        catch (Exception e)
        {
            how = $"python3 not usable: {e.Message}";
            return null;
        }
    }

    /// <summary>The loaded <c>libtorch_cpu.so</c>, whose MKL <see cref="MklThreads"/> reaches; null before loading.</summary>
    internal static IntPtr? LibTorchCpuHandle
    {
        get
        {
            lock (Gate) return Handles.TryGetValue("libtorch_cpu.so", out var h) ? h : null;
        }
    }

    /// <summary>MKL's code path as libtorch's MKL detects it (see <see cref="MklDispatch"/>), or null when unknown.</summary>
    public static int? MklCodePath() => LibTorchCpuHandle is { } h ? MklDispatch.DetectedCodePath(h) : null;

    /// <summary>Path of a library as the process has it mapped (from /proc/self/maps), or null.</summary>
    static string? LoadedLibraryPath(string fileName) =>
        LoadedLibraries().FirstOrDefault(p => Path.GetFileName(p) == fileName
            || Path.GetFileName(p).StartsWith(fileName + ".", StringComparison.Ordinal));

    /// <summary>Every shared library mapped into this process.</summary>
    public static IReadOnlyList<string> LoadedLibraries()
    {
        var set = new List<string>();
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..];
            if (path.Contains(".so") && !set.Contains(path)) set.Add(path);
        }
        return set;
    }

    /// <summary>The native libraries relevant to torch that this process has loaded, with their paths.</summary>
    public static IReadOnlyList<string> TorchLibraries() =>
        LoadedLibraries().Where(p =>
        {
            var f = Path.GetFileName(p);
            return f.StartsWith("libtorch") || f.StartsWith("libc10") || f.StartsWith("libLibTorchSharp") || f.StartsWith("libstdc++")
                || f.StartsWith("libgomp") || f.StartsWith("libcud") || f.StartsWith("libcublas") || f.StartsWith("libnccl");
        }).ToList();
}
