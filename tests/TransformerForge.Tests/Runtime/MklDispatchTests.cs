using System.Runtime.InteropServices;
using TorchSharp;
using TransformerForge.Runtime;
using TransformerForge.Tests.Training;

namespace TransformerForge.Tests.Runtime;

public class MklDispatchTests
{
    static bool IsAmd => File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("vendor_id") && l.Contains("AuthenticAMD"));

    [Fact]
    public void TheGeneratedSharedObjectLoadsAndEveryFunctionAnswersYes()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tforge-mkl-{Guid.NewGuid():N}.so");
        File.WriteAllBytes(path, MklDispatch.SharedObject(["first_answer", "second_answer", "third"]));
        try
        {
            var handle = NativeLibrary.Load(path);
            foreach (var name in new[] { "first_answer", "second_answer", "third" })
                Assert.Equal(1, Marshal.GetDelegateForFunctionPointer<IntFunction>(NativeLibrary.GetExport(handle, name))());
            Assert.False(NativeLibrary.TryGetExport(handle, "absent", out _));
        }
        finally { File.Delete(path); }
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate int IntFunction();

    /// <summary>On an AMD CPU libtorch's MKL runs its generic kernels (code path 0) unless told otherwise.</summary>
    [Fact]
    public void OnAnAmdCpuMklChoosesItsKernelsByInstructionSet()
    {
        TorchRuntime.EnsureLoaded();
        using var x = torch.ones(4, 4);
        using var y = x.matmul(x); // MKL has run
        Assert.Equal(4f, y[0, 0].item<float>());
        var path = TorchRuntime.MklCodePath();
        Assert.NotNull(path);
        if (IsAmd && Environment.GetEnvironmentVariable(MklDispatch.Env) is null)
        {
            Assert.True(MklDispatch.Applied, MklDispatch.NotAppliedBecause);
            Assert.True(path > 0, $"MKL code path {path}: still the generic one");
        }
        else Assert.False(MklDispatch.Applied);
    }

    [Fact]
    public void VendorKeepsMklsOwnChoiceAndAnythingElseIsRefusedInOneLine()
    {
        var vendor = CliProcess.Run(TimeSpan.FromMinutes(1), ["info"], new Dictionary<string, string?> { [MklDispatch.Env] = "vendor" });
        Assert.Equal(0, vendor.Code);
        Assert.Contains($"MKL's own choice: {MklDispatch.Env}=vendor", vendor.Stdout);
        if (IsAmd) Assert.Contains("MKL code path: 0 ", vendor.Stdout);

        var bad = CliProcess.Run(TimeSpan.FromMinutes(1), ["info"], new Dictionary<string, string?> { [MklDispatch.Env] = "fast" });
        Assert.NotEqual(0, bad.Code);
        var line = Assert.Single(bad.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"{MklDispatch.Env}=fast", line);
    }
}
