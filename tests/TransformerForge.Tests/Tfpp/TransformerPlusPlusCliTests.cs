using System.Text.Json.Nodes;
using TransformerForge.Tests.Data;
using TransformerForge.Tests.Training;

namespace TransformerForge.Tests.Tfpp;

/// <summary><c>tforge train --config</c> and <c>tforge generate</c> with an Archai architecture file, as a user runs them.</summary>
public class TransformerPlusPlusCliTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
    static string ArchaiExample => Path.Combine(TestPaths.RepoRoot, "docs", "examples", "archai-tfpp.json");

    /// <summary>docs/examples/archai-tfpp.json: six mixers over three layers (Archai's to_file output, unchanged).</summary>
    [Fact]
    public void AnArchaiArchitectureTrainsResumesAndGenerates()
    {
        using var tmp = new TempDir();
        var corpus = tmp.File("c.txt", string.Concat(Enumerable.Repeat("to be or not to be, that is the question. ", 200)));
        var run = Path.Combine(tmp.Path, "run");
        var train = CliProcess.Run(Timeout, "train", "--config", ArchaiExample, "--data", corpus, "--seq-len", "32", "--steps", "12",
            "--batch", "4", "--warmup", "2", "--eval-every", "6", "--eval-batches", "2", "--sample-every", "0", "--log-every", "6", "--out", run);
        Assert.True(train.Code == 0, train.Stdout + train.Stderr);
        Assert.Contains("Transformer++ (codegen)", train.Stdout);
        Assert.Contains("sep_conv1d:1 sgconv3:1 local_attn:1 lsh_attn:1", train.Stdout);
        Assert.Contains("step 12/12", train.Stdout);
        var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "checkpoint", "config.json")))!;
        Assert.Equal("TransformerPlusPlus", saved["type"]!.GetValue<string>());

        var resumed = CliProcess.Run(Timeout, "train", "--out", run, "--resume", "--steps", "14", "--log-every", "1", "--sample-every", "0");
        Assert.True(resumed.Code == 0, resumed.Stdout + resumed.Stderr);
        Assert.Contains("step 14/14", resumed.Stdout);

        var generate = CliProcess.Run(Timeout, "generate", "--model", Path.Combine(run, "checkpoint"), "--prompt", "to be", "--tokens", "12", "--seed", "1");
        Assert.True(generate.Code == 0, generate.Stdout + generate.Stderr);
        Assert.StartsWith("to be", generate.Stdout);
        Assert.True(generate.Stdout.TrimEnd().Length > "to be".Length, generate.Stdout);
    }

    /// <summary>The native JSON, layers that differ and all six mixers: two steps on text, then generation and evaluation from the run.</summary>
    [Fact]
    public void ANativeConfigTrainsAndGenerates()
    {
        using var tmp = new TempDir();
        var corpus = tmp.File("c.txt", string.Concat(Enumerable.Repeat("to be or not to be, that is the question. ", 50)));
        var config = tmp.File("tfpp.json", """
            { "type": "TransformerPlusPlus", "num_tokens": 256, "max_seq_len": 16, "dim": 16, "heads": 2, "ff_inner_dim": 32,
              "mixers": { "mha": 1, "sgconv": 1 }, "sgconv_kernel_size": 4,
              "layers": [ {}, { "heads": 4, "mixers": { "sep_conv1d": 1, "sgconv3": 1, "local_attn": 1, "lsh_attn": 1 }, "sep_conv1d_kernel_size": 3,
                                "sgconv3_kernel_size": 4, "local_attn_window_size": 4, "lsh_num_hashes": 2, "lsh_bucket_size": 4 } ] }
            """);
        var run = Path.Combine(tmp.Path, "run");
        var train = CliProcess.Run(Timeout, "train", "--config", config, "--data", corpus, "--steps", "2", "--batch", "2", "--warmup", "1",
            "--eval-every", "2", "--eval-batches", "1", "--sample-every", "0", "--log-every", "1", "--out", run);
        Assert.True(train.Code == 0, train.Stdout + train.Stderr);
        Assert.Contains("Transformer++ (codegen)", train.Stdout);
        Assert.Contains("step 2/2", train.Stdout);

        var generate = CliProcess.Run(Timeout, "generate", "--model", run, "--prompt", "to be", "--tokens", "8", "--seed", "1");
        Assert.True(generate.Code == 0, generate.Stdout + generate.Stderr);
        Assert.StartsWith("to be", generate.Stdout);
        Assert.Matches(@"generated 8 tokens", generate.Stderr);

        var eval = CliProcess.Run(Timeout, "eval", "--model", run, "--batches", "1", "--samples", "1");
        Assert.True(eval.Code == 0, eval.Stdout + eval.Stderr);
        Assert.Contains("val loss", eval.Stdout);
    }

    [Fact]
    public void AnUnknownOpIsOneLineNamingTheLayerAndKey()
    {
        using var tmp = new TempDir();
        var json = File.ReadAllText(ArchaiExample).Replace("\"sep_conv1d\",\n                        0.25", "\"sep_conv2d\",\n                        0.25");
        var config = tmp.File("arch.json", json);
        var r = CliProcess.Run(Timeout, "train", "--config", config, "--task", "copy", "--out", Path.Combine(tmp.Path, "run"));
        Assert.True(r.Code == 2, $"exit code {r.Code}\n{r.Stdout}\n{r.Stderr}");
        Assert.Contains("hidden_layers._configs.1.op_allocation[1]", r.Stderr);
        Assert.Contains("unknown op 'sep_conv2d'", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }
}
