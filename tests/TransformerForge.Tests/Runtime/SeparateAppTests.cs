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

    /// <summary>
    /// A program whose very first statement is <c>torch.manual_seed</c> — no TransformerForge type touched — works:
    /// referencing TransformerForge compiles in the attach call (build/TransformerForge.targets). Without it, TorchSharp's
    /// own loader fails on Debian 12's libstdc++ with a NotSupportedException.
    /// </summary>
    [Fact]
    public void FirstCallToTorchSharpWorksInAnAppThatReferencesTheLibrary()
    {
        var dll = Path.Combine(TestPaths.RepoRoot, "tests", "TransformerForge.FirstCall", "bin",
            AppContext.BaseDirectory.Contains("/Release/") ? "Release" : "Debug", "net10.0", "TransformerForge.FirstCall.dll");
        Assert.True(File.Exists(dll), $"build the probe first: {dll}");
        var psi = new ProcessStartInfo("dotnet", $"\"{dll}\"") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, output);
        Assert.StartsWith("first call ok: ", output);
    }
}
