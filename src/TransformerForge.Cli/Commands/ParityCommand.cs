using System.CommandLine;
using TransformerForge.Parity;

namespace TransformerForge.Cli.Commands;

/// <summary><c>tforge parity --fixtures DIR</c>: runs every fixture case under DIR; exit code 1 if any fails.</summary>
public static class ParityCommand
{
    public static Command Create()
    {
        var fixtures = new Option<string>("--fixtures") { Description = "Fixture root: every directory below it holding a case.json is a case.", Required = true };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("parity", "Compare our models with the Python originals on parity fixtures (float64 <= 1e-9, float32 <= 1e-4).") { fixtures, device };
        cmd.SetAction(r =>
        {
            var dev = Runtime.TorchRuntime.SelectDevice(r.GetValue(device)!);
            int pass = 0, fail = 0;
            foreach (var result in ParityRunner.RunAll(r.GetValue(fixtures)!, dev))
            {
                Console.WriteLine(result);
                if (result.Pass) pass++; else fail++;
            }
            Console.WriteLine($"{pass} passed, {fail} failed");
            return fail == 0 ? 0 : 1;
        });
        return cmd;
    }
}
