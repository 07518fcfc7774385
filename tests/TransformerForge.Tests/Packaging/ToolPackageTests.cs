using System.Diagnostics;
using TransformerForge.Tests.Data;

namespace TransformerForge.Tests.Packaging;

/// <summary>Runs only with <c>TFORGE_PACKAGING_TEST=1</c>: packing the tool copies libtorch into a 130 MB package (minutes).</summary>
public sealed class PackagingFactAttribute : FactAttribute
{
    public PackagingFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("TFORGE_PACKAGING_TEST") != "1")
            Skip = "packs and installs tforge as a .NET tool (about 3 minutes); run with TFORGE_PACKAGING_TEST=1 dotnet test --filter ToolPackageTests";
    }
}

/// <summary><c>tforge</c> as a .NET tool: <c>dotnet pack</c>, then <c>dotnet tool install</c> into a temporary tool path, then <c>tforge info</c>.</summary>
public class ToolPackageTests
{
    static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd() + stderr.Result;
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    [PackagingFact]
    public void PacksInstallsAndRunsAsADotnetTool()
    {
        using var tmp = new TempDir();
        var feed = Path.Combine(tmp.Path, "feed");
        var tools = Path.Combine(tmp.Path, "tools");
        var cli = Path.Combine(TestPaths.RepoRoot, "src", "TransformerForge.Cli", "TransformerForge.Cli.csproj");
        var pack = Run("dotnet", "pack", cli, "-c", "Release", "-o", feed);
        Assert.True(pack.Code == 0, pack.Output);
        var install = Run("dotnet", "tool", "install", "--tool-path", tools, "--add-source", feed, "TransformerForge.Cli");
        Assert.True(install.Code == 0, install.Output);
        var info = Run(Path.Combine(tools, "tforge"), "info");
        Assert.True(info.Code == 0, info.Output);
        Assert.Contains("backend: Cpu", info.Output);
        Assert.Contains("libtorch_cpu.so", info.Output);
    }
}
