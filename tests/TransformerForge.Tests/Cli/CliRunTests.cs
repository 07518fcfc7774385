using System.Runtime.InteropServices;
using TransformerForge.Data;
using TransformerForge.Tests.Data;
using TransformerForge.Tests.Training;
using TransformerForge.Training;

namespace TransformerForge.Tests.Cli;

/// <summary>generate and eval on a saved run, as a user types them.</summary>
public class CliGenerateTests : IClassFixture<CliGenerateTests.TextRun>
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    readonly TextRun _run;

    public CliGenerateTests(TextRun run) => _run = run;

    /// <summary>A 3-step run on a small corpus with the bytes tokenizer, trained in-process once for the class.</summary>
    public sealed class TextRun : IDisposable
    {
        readonly TempDir _tmp = new();
        public string Path { get; }
        public string Dir => _tmp.Path;

        public TextRun()
        {
            var corpus = _tmp.File("c.txt", string.Concat(Enumerable.Repeat("to be or not to be, that is the question.\n", 200)));
            Path = System.IO.Path.Combine(_tmp.Path, "run");
            using var data = new TextWindowData(TextDataset.Open(corpus, ByteTokenizer.Instance, new TextDatasetOptions(CacheDirectory: System.IO.Path.Combine(_tmp.Path, "cache"))), 16);
            using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(numTokens: 256, maxSeqLen: 64), data, TrainingFixtures.TinyOptions(Path) with { Steps = 3 });
            trainer.Run();
        }

        public void Dispose() => _tmp.Dispose();
    }

    [Fact]
    public void GeneratesABatchOfPromptsFromARunDirectoryWithTheChosenSampler()
    {
        var prompts = System.IO.Path.Combine(_run.Dir, "prompts.txt");
        File.WriteAllLines(prompts, ["to be", "that is the question"]);
        var r = CliProcess.Run(Timeout, "generate", "--model", _run.Path, "--prompts", prompts, "--tokens", "6", "--entmax", "1.3", "--top-k", "20",
            "--temperature", "0.9", "--eos", "\\n", "--seed", "5");
        Assert.True(r.Code == 0, r.Stdout + r.Stderr);
        Assert.Contains("--- prompt 1\nto be", r.Stdout);
        Assert.Contains("--- prompt 2\nthat is the question", r.Stdout);
        Assert.Matches(@"generated \d+ tokens in [\d.]+ s \([\d.]+ tokens/s\)", r.Stderr);
    }

    [Fact]
    public void TokensOutsideTheModelsVocabularyAreRefused() =>
        CliErrorTests.AssertOneLine(CliProcess.Run(Timeout, "generate", "--model", _run.Path, "--prompt", "日本", "--tokenizer", "cl100k", "--tokens", "2"),
            "prompt 1 holds token", "the model has only 256 tokens");

    [Fact]
    public void EvalRefusesATaskOnATextModel() =>
        CliErrorTests.AssertOneLine(CliProcess.Run(Timeout, "eval", "--model", _run.Path, "--task", "copy"), "was trained on text", "--data");
}

/// <summary>
/// Signals and the run lock, with real processes: a second training on the same --out is refused while the first one
/// runs on; SIGTERM and SIGHUP stop a run after its step with a checkpoint, like Ctrl+C. (It waits for steps rather than
/// time, so it can run beside other tests.)
/// </summary>
public class CliSignalAndLockTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int signal);

    const int SIGHUP = 1, SIGTERM = 15;

    static string[] Train(string run) =>
        ["train", "--task", "copy", "--task-length", "5", "--dim", "16", "--depth", "1", "--heads", "2", "--batch", "8", "--steps", "100000",
         "--checkpoint-every", "0", "--eval-every", "0", "--sample-every", "0", "--log-every", "1", "--target-exact-match", "0", "--out", run];

    static void WaitForSteps(CliProcess p, string run, int steps)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (DateTime.UtcNow < until && !p.HasExited)
        {
            if (File.Exists(Path.Combine(run, MetricsLog.FileName)) && File.ReadLines(Path.Combine(run, MetricsLog.FileName)).Count() >= steps) return;
            Thread.Sleep(50);
        }
        throw new Xunit.Sdk.XunitException($"no {steps} steps logged:\n{p.Stdout}\n{p.Stderr}");
    }

    [Fact]
    public void ASecondRunOnTheSameOutIsRefusedAndSignalsCheckpoint()
    {
        using var tmp = new TempDir();
        var run = Path.Combine(tmp.Path, "run");
        int stopped;
        using (var first = new CliProcess(Train(run)))
        {
            WaitForSteps(first, run, 3);
            // Another training in the same directory: refused before it touches anything.
            var second = CliProcess.Run(Timeout, Train(run));
            CliErrorTests.AssertOneLine(second, $"is in use by process {first.Id}");
            Assert.False(first.HasExited, "the first run must go on");

            Assert.Equal(0, kill(first.Id, SIGTERM));
            Assert.Equal(0, first.Wait(Timeout));
            Assert.Contains("SIGTERM: stopping after this step and saving a checkpoint", first.Stderr);
            var summary = System.Text.RegularExpressions.Regex.Match(first.Stdout, @"stopped at step (\d+) of 100000");
            Assert.True(summary.Success, first.Stdout);
            stopped = int.Parse(summary.Groups[1].Value);
        }
        Assert.Equal(stopped, TrainerState.Load(Checkpoint.Resolve(run)).Step);
        // The survivor's log is whole: every step once, no line of the refused run.
        var logged = MetricsLog.Read(Path.Combine(run, MetricsLog.FileName)).Select(o => o["step"]!.GetValue<int>()).ToList();
        Assert.Equal(Enumerable.Range(1, stopped), logged);
        Assert.False(File.Exists(Path.Combine(run, RunLock.FileName)), "the lock is released at exit");

        // SIGHUP (a closed terminal) does the same for the resumed run.
        using var resumed = new CliProcess("train", "--out", run, "--resume");
        WaitForSteps(resumed, run, stopped + 2);
        Assert.Equal(0, kill(resumed.Id, SIGHUP));
        Assert.Equal(0, resumed.Wait(Timeout));
        Assert.Contains("SIGHUP: stopping", resumed.Stderr);
        Assert.True(TrainerState.Load(Checkpoint.Resolve(run)).Step >= stopped + 2);
    }

}

/// <summary>Resuming from the command line: a moved corpus, and the library's resume rules in one line.</summary>
public class CliResumeTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public void ResumeAcceptsAMovedCorpusByItsContent()
    {
        using var tmp = new TempDir();
        var corpus = tmp.File("c.txt", string.Concat(Enumerable.Repeat("to be or not to be, that is the question. ", 300)));
        var run = Path.Combine(tmp.Path, "run");
        var first = CliProcess.Run(Timeout, "train", "--data", corpus, "--dim", "16", "--depth", "1", "--heads", "2", "--seq-len", "16",
            "--steps", "4", "--batch", "4", "--eval-every", "0", "--sample-every", "0", "--out", run);
        Assert.True(first.Code == 0, first.Stdout + first.Stderr);

        var moved = Path.Combine(tmp.Path, "elsewhere", "corpus.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(moved)!);
        File.Move(corpus, moved);
        CliErrorTests.AssertOneLine(CliProcess.Run(Timeout, "train", "--out", run, "--resume", "--steps", "6"), "is gone", "--data");
        var resumed = CliProcess.Run(Timeout, "train", "--out", run, "--resume", "--steps", "6", "--data", moved);
        Assert.True(resumed.Code == 0, resumed.Stdout + resumed.Stderr);
        Assert.Equal(6, TrainerState.Load(Checkpoint.Resolve(run)).Step);
        Assert.Equal(Path.GetFullPath(moved), TrainingDataSpec.Load(Checkpoint.Resolve(run)).Path);
        // A changed seed is refused by the library's resume rules, in one line.
        CliErrorTests.AssertOneLine(CliProcess.Run(Timeout, "train", "--out", run, "--resume", "--steps", "8", "--seed", "9"), "cannot resume", "seed 1234 → 9");
    }

    /// <summary>
    /// A run keeps one CPU thread count from start to end, saved in its checkpoint: a resumed run that left out
    /// --threads computes with the count the run used, so it equals an uninterrupted run bit for bit (another count
    /// splits sums differently and the weights drift in the last bits, as the last run here shows).
    /// </summary>
    [Fact]
    public void ResumeKeepsTheRunsThreadCount()
    {
        using var tmp = new TempDir();
        var corpus = tmp.File("c.txt", string.Concat(Enumerable.Repeat("to be or not to be, that is the question. whether 'tis nobler in the mind ", 200)));
        // A count other than libtorch's default here, so that forgetting it on resume shows.
        var threads = (Environment.ProcessorCount + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] Train(string run, int steps) => ["train", "--data", corpus, "--dim", "64", "--depth", "1", "--heads", "2", "--seq-len", "64",
            "--batch", "8", "--steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--eval-every", "0",
            "--sample-every", "0", "--threads", threads, "--out", run];
        string Weights(string run) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(
            File.ReadAllBytes(Path.Combine(Checkpoint.Resolve(run), "model.safetensors"))));
        void Ok((int Code, string Stdout, string Stderr) r) => Assert.True(r.Code == 0, r.Stdout + r.Stderr);

        string whole = Path.Combine(tmp.Path, "whole"), resumed = Path.Combine(tmp.Path, "resumed"), changed = Path.Combine(tmp.Path, "changed");
        Ok(CliProcess.Run(Timeout, Train(whole, 6)));
        Ok(CliProcess.Run(Timeout, Train(resumed, 3)));
        Ok(CliProcess.Run(Timeout, Train(changed, 3)));
        Ok(CliProcess.Run(Timeout, "train", "--out", resumed, "--resume", "--steps", "6"));
        var other = CliProcess.Run(Timeout, "train", "--out", changed, "--resume", "--steps", "6", "--threads", "1");
        Ok(other);

        Assert.Equal(int.Parse(threads, System.Globalization.CultureInfo.InvariantCulture), TrainerState.Load(Checkpoint.Resolve(resumed)).Threads);
        Assert.Equal(Weights(whole), Weights(resumed));
        Assert.Contains("the run used " + threads, other.Stdout);
        Assert.NotEqual(Weights(whole), Weights(changed));
    }

    [Theory]
    [InlineData(4, 2, 1, 4)]       // the user's choice wins
    [InlineData(null, 2, 1, 2)]    // else the resumed run's saved count
    [InlineData(null, null, 1, 1)] // else what the machine leaves now
    public void RunThreadsPrefersTheUserThenTheCheckpoint(int? user, int? saved, int measured, int expected) =>
        Assert.Equal(expected, TransformerForge.Runtime.ThreadPolicy.RunThreads(user, saved, () => measured));
}
