using System.CommandLine;
using TransformerForge.Benchmarks;
using TransformerForge.Runtime;

namespace TransformerForge.Cli.Commands;

/// <summary><c>tforge bench ...</c>: benchmarks that print figures and ratios.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Speed benchmarks (figures and ratios).");
        bench.Subcommands.Add(Generate());
        return bench;
    }

    static Command Generate()
    {
        var tokens = new Option<int>("--tokens") { Description = "New tokens to generate.", DefaultValueFactory = _ => 512 };
        var dim = new Option<int>("--dim") { DefaultValueFactory = _ => 256 };
        var depth = new Option<int>("--depth") { DefaultValueFactory = _ => 4 };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => 8 };
        var positions = new Option<string>("--positions") { Description = "rotary, alibi, t5 or absolute", DefaultValueFactory = _ => "rotary" };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("generate", "KV-cached vs. recomputed generation of the same decoder.") { tokens, dim, depth, heads, positions, device };
        cmd.SetAction(r =>
        {
            var dev = TorchRuntime.SelectDevice(r.GetValue(device)!);
            Console.WriteLine($"decoder dim {r.GetValue(dim)} depth {r.GetValue(depth)} heads {r.GetValue(heads)}, {r.GetValue(positions)} positions, " +
                              $"prompt 16, {r.GetValue(tokens)} new tokens, greedy, {dev}, {TorchSharp.torch.get_num_threads()} threads");
            var rows = GenerationBenchmark.Run(dev, r.GetValue(tokens), r.GetValue(dim), r.GetValue(depth), r.GetValue(heads), r.GetValue(positions)!, Console.WriteLine);
            Console.WriteLine($"speed-up of the cache: {rows[0].TokensPerSecond / rows[1].TokensPerSecond:F1}x");
            return rows.All(x => x.Note == "") ? 0 : 1;
        });
        return cmd;
    }
}
