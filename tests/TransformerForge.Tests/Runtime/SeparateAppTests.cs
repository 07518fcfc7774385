using System.Diagnostics;

namespace TransformerForge.Tests.Runtime;

/// <summary>A fresh process that only references the library loads libtorch with no manual step (the tforge CLI is such an app).</summary>
public class SeparateAppTests
{
    [Fact]
    public void CliInfoReportsLoadedNatives()
    {
        var dll = Path.Combine(TestPaths.RepoRoot, "src", "TransformerForge.Cli", "bin",
            AppContext.BaseDirectory.Contains("/Release/") ? "Release" : "Debug", "net10.0", "tforge.dll");
        Assert.True(File.Exists(dll), $"build the CLI first: {dll}");
        var psi = new ProcessStartInfo("dotnet", $"\"{dll}\" info") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, output);
        Assert.Contains("libLibTorchSharp.so", output);
        Assert.Contains("libtorch_cpu.so", output);
        Assert.Contains("backend: Cpu", output);
    }
}
