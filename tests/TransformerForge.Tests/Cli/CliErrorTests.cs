using System.CommandLine;
using TransformerForge.Cli.Commands;
using TransformerForge.Tests.Data;
using TransformerForge.Tests.Training;

namespace TransformerForge.Tests.Cli;

/// <summary>
/// tforge's exit codes: 2 and one line naming the problem for bad input or environment, 1 and a log file with the
/// trace for an internal error; never a stack trace or .NET type names on the console.
/// </summary>
public class CliErrorTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    /// <summary>Exit 2, one line on stderr starting "tforge: ", holding <paramref name="expected"/>, no trace, no .NET names.</summary>
    internal static void AssertOneLine((int Code, string Stdout, string Stderr) r, params string[] expected)
    {
        Assert.True(r.Code == 2, $"exit code {r.Code}\n{r.Stdout}\n{r.Stderr}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr:\n{r.Stderr}");
        Assert.StartsWith("tforge: ", lines[0]);
        foreach (var e in expected) Assert.Contains(e, lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("System.", r.Stderr);
        Assert.DoesNotContain("(Parameter '", r.Stderr);
    }

    [Fact]
    public void ParseErrorsExitTwoInWords()
    {
        AssertOneLine(CliProcess.Run(Timeout, "train", "--dim", "abc"), "'abc'", "--dim", "as an integer", "tforge train --help");
        AssertOneLine(CliProcess.Run(Timeout, "bogus"), "Unrecognized command or argument 'bogus'");
    }

    [Fact]
    public void HelpShowsTheDefaults()
    {
        var train = CliProcess.Run(Timeout, "train", "--help");
        Assert.Equal(0, train.Code);
        Assert.Contains("[default: 128 for --data, 64 for tasks]", train.Stdout);
        Assert.Contains("[default: 1234]", train.Stdout);
        Assert.Contains("--checkpoint-minutes", train.Stdout);
        var generate = CliProcess.Run(Timeout, "generate", "--help");
        Assert.Contains("[default: 200]", generate.Stdout);
        Assert.Contains("--entmax", generate.Stdout);
        Assert.Contains("--prompts", generate.Stdout);
    }

    [Fact]
    public void OutNamingAFileOrAnUnwritablePlaceIsRefused()
    {
        using var tmp = new TempDir();
        var file = tmp.File("taken.txt", "x");
        AssertOneLine(CliProcess.Run(Timeout, "train", "--task", "copy", "--steps", "1", "--out", file), $"--out '{file}' is a file");
        AssertOneLine(CliProcess.Run(Timeout, "train", "--task", "copy", "--steps", "1", "--out", "/proc/tforge-run"), "cannot write to --out '/proc/tforge-run'");
    }

    [Fact]
    public void ConfigurationErrorsNameTheFileAndKeyOnce()
    {
        using var tmp = new TempDir();
        var config = tmp.File("m.json", """{"type": "TransformerWrapper", "num_tokens": 16, "max_seq_len": 16, "attn_layers": {"type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "ff_mult": "\ud800"}}""");
        var r = CliProcess.Run(Timeout, "train", "--config", config, "--task", "copy", "--steps", "1", "--out", Path.Combine(tmp.Path, "run"));
        AssertOneLine(r, config, "config key 'attn_layers.ff_mult'", "not valid UTF-16");
        Assert.Equal(r.Stderr.IndexOf("config key", StringComparison.Ordinal), r.Stderr.LastIndexOf("config key", StringComparison.Ordinal));
    }

    [Fact]
    public void AModelTooLargeForMemoryIsRefusedWithItsEstimate()
    {
        using var tmp = new TempDir();
        var config = tmp.File("m.json", """{"type": "TransformerWrapper", "num_tokens": 16, "max_seq_len": 16, "attn_layers": {"type": "Decoder", "dim": 16, "depth": 2147483647, "heads": 2}}""");
        AssertOneLine(CliProcess.Run(Timeout, "train", "--config", config, "--task", "copy", "--steps", "1", "--out", Path.Combine(tmp.Path, "run")),
            "needs about", "parameters", "is available");
    }

    /// <summary>An unexpected exception (a bug) exits 1 with one line naming a log file in the run directory that holds the trace.</summary>
    [Fact]
    public void AnInternalErrorExitsOneWithItsTraceInALogFile()
    {
        using var tmp = new TempDir();
        var root = new RootCommand();
        var crash = new Command("crash");
        crash.SetAction((Func<ParseResult, int>)(_ =>
        {
            CliRunner.RunDirectory = tmp.Path;
            throw new InvalidOperationException("something impossible happened");
        }));
        root.Subcommands.Add(crash);

        var stderr = new StringWriter();
        var original = Console.Error;
        int code;
        Console.SetError(stderr);
        try { code = CliRunner.Run(root, ["crash"]); }
        finally
        {
            Console.SetError(original);
            CliRunner.RunDirectory = null;
        }
        Assert.Equal(1, code);
        var line = stderr.ToString().Trim();
        Assert.StartsWith("tforge: internal error: something impossible happened; details in ", line);
        var log = line[(line.IndexOf("details in ", StringComparison.Ordinal) + "details in ".Length)..];
        Assert.Equal(tmp.Path, Path.GetDirectoryName(log));
        Assert.Contains("System.InvalidOperationException: something impossible happened", File.ReadAllText(log));
        Assert.Contains("   at ", File.ReadAllText(log));
    }

    [Fact]
    public void InputErrorsLoseDotNetDecorations()
    {
        Assert.Equal("bad kind", CliRunner.Describe(new ArgumentException("bad kind", "kind")));
        Assert.Equal("Cannot parse argument 'x' for option '--steps' as an integer.",
            CliRunner.Friendly("Cannot parse argument 'x' for option '--steps' as expected type 'System.Nullable`1[System.Int32]'."));
        Assert.True(CliRunner.IsInputError(new IOException("No space left on device")));
        Assert.False(CliRunner.IsInputError(new InvalidOperationException()));
    }
}
