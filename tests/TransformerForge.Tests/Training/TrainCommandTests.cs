using TransformerForge.Tests.Data;
using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

/// <summary><c>tforge train</c> and <c>tforge eval</c> as a user runs them: a child process, its exit code and output.</summary>
public class TrainCommandTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    static void AssertInputError((int Code, string Stdout, string Stderr) r, params string[] expected)
    {
        Assert.True(r.Code == 2, $"exit code {r.Code}\n{r.Stdout}\n{r.Stderr}");
        foreach (var e in expected) Assert.Contains(e, r.Stderr);
    }

    [Fact]
    public void MissingDataFile()
    {
        using var tmp = new TempDir();
        var missing = Path.Combine(tmp.Path, "nope.txt");
        AssertInputError(CliProcess.Run(Timeout, "train", "--data", missing, "--out", Path.Combine(tmp.Path, "run")), missing, "does not exist");
    }

    [Fact]
    public void EmptyDataFile()
    {
        using var tmp = new TempDir();
        var empty = tmp.File("empty.txt", "");
        AssertInputError(CliProcess.Run(Timeout, "train", "--data", empty, "--out", Path.Combine(tmp.Path, "run")), empty, "is empty");
    }

    [Fact]
    public void SeqLenLongerThanTheModel()
    {
        using var tmp = new TempDir();
        var corpus = tmp.File("c.txt", string.Concat(Enumerable.Repeat("abcdefgh ", 500)));
        var config = tmp.File("model.json", TrainingFixtures.TinyDecoder(numTokens: 256, maxSeqLen: 16).ToJsonString());
        AssertInputError(CliProcess.Run(Timeout, "train", "--data", corpus, "--config", config, "--seq-len", "32", "--out", Path.Combine(tmp.Path, "run")),
            "--seq-len 32", "max_seq_len 16");
    }

    [Fact]
    public void UnknownPreset() =>
        AssertInputError(CliProcess.Run(Timeout, "train", "--preset", "gpt-17"), "unknown preset 'gpt-17'", "vanilla", "primer-ez");

    [Fact]
    public void UnknownTask() =>
        AssertInputError(CliProcess.Run(Timeout, "train", "--task", "juggle"), "Unknown synthetic task 'juggle'", "reverse");

    [Fact]
    public void ResumeWithoutACheckpoint()
    {
        using var tmp = new TempDir();
        AssertInputError(CliProcess.Run(Timeout, "train", "--resume", "--out", tmp.Path), "no checkpoint");
    }

    [Fact]
    public void TrainsATextCorpusThenEvaluatesIt()
    {
        using var tmp = new TempDir();
        var corpus = tmp.File("c.txt", string.Concat(Enumerable.Repeat("to be or not to be, that is the question. ", 300)));
        var run = Path.Combine(tmp.Path, "run");
        var train = CliProcess.Run(Timeout, "train", "--data", corpus, "--dim", "16", "--depth", "1", "--heads", "2", "--seq-len", "16",
            "--steps", "20", "--batch", "8", "--eval-every", "10", "--sample-every", "20", "--log-every", "5", "--out", run);
        Assert.True(train.Code == 0, train.Stdout + train.Stderr);
        Assert.Contains("bits/byte", train.Stdout);
        Assert.Contains("step 20/20", train.Stdout);
        Assert.True(File.Exists(Path.Combine(run, MetricsLog.FileName)));
        Assert.True(new FileInfo(Path.Combine(run, "loss.png")).Length > 1000);
        Assert.True(File.Exists(Path.Combine(run, "checkpoint", "tokenizer.json")));

        var eval = CliProcess.Run(Timeout, "eval", "--model", run, "--batches", "2", "--batch", "4");
        Assert.True(eval.Code == 0, eval.Stdout + eval.Stderr);
        Assert.Contains("val loss", eval.Stdout);
        Assert.Contains("bits/byte", eval.Stdout);

        // Starting a new run over an existing one is refused rather than silently overwriting it.
        AssertInputError(CliProcess.Run(Timeout, "train", "--data", corpus, "--out", run), "--resume");
    }
}

/// <summary>The demo job is timed, so it runs alone.</summary>
[Collection(SerialCollection.Name)]
public class DefaultTrainJobTests
{
    /// <summary>The main job: no arguments but the run directory, exact match printed, 95% reached, well inside 3 minutes.</summary>
    [Fact]
    public void DefaultJobReachesTheExactMatchTarget()
    {
        using var tmp = new TempDir();
        var run = Path.Combine(tmp.Path, "run");
        var r = CliProcess.Run(TimeSpan.FromMinutes(3), "train", "--out", run);
        Assert.True(r.Code == 0, r.Stdout + r.Stderr);
        Assert.Contains("exact match", r.Stdout);
        Assert.Contains("reached the exact-match target", r.Stdout);
        Assert.Contains("✓", r.Stdout);
        var state = TrainerState.Load(Path.Combine(run, "checkpoint"));
        Assert.True(state.LastEvaluation!.ExactMatch >= 0.95);

        var eval = CliProcess.Run(TimeSpan.FromMinutes(2), "eval", "--model", run);
        Assert.True(eval.Code == 0, eval.Stdout + eval.Stderr);
        Assert.Contains("exact match", eval.Stdout);
    }
}
