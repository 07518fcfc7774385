using System.CommandLine;
using TorchSharp;
using TransformerForge.Runtime;

namespace TransformerForge.Cli.Commands;

/// <summary><c>tforge info</c>: versions, devices, threads, and where each native library was loaded from.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var device = CliRunner.DeviceOption();
        var cmd = new Command("info", "Show versions, devices, threads and the native libraries loaded.") { device };
        cmd.SetAction(r =>
        {
            var dev = TorchRuntime.SelectDevice(r.GetValue(device)!);
            foreach (var line in RuntimeInfo.Describe(dev)) Console.WriteLine(line);
            return 0;
        });
        return cmd;
    }
}
