using System.Diagnostics;
using System.Text.Json.Nodes;
using TorchSharp;
using TransformerForge.Data;
using TransformerForge.IO;
using TransformerForge.Tests.Data;
using TransformerForge.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

/// <summary>
/// A checkpoint's parts are checked against each other, and a resume's options and data against the checkpoint,
/// before anything is restored (issue 12: a wrong-sized RNG state aborted the process; a step that disagreed with the
/// optimizer resumed; issue 11: Trainer.Resume accepted a changed seed, batch or learning rate).
/// </summary>
public class CheckpointConsistencyTests(ITestOutputHelper output)
{
    static string TrainTiny(TempDir tmp, int steps = 4) => TrainingFixtures.TrainTiny(tmp, steps);

    static Exception ResumeFails(string run, TrainOptions? options = null, ITrainingData? data = null)
    {
        using var own = data is null ? TrainingFixtures.CopyTask() : null;
        return Record.Exception(() => Trainer.Resume(run, data ?? own!, options ?? TrainingFixtures.TinyOptions(run) with { Steps = 8 }).Dispose())
            ?? throw new Xunit.Sdk.XunitException("the resume was accepted");
    }

    static void EditState(string run, Action<JsonObject> edit)
    {
        var file = Path.Combine(run, "checkpoint", TrainerState.FileName);
        var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        edit(json);
        File.WriteAllText(file, json.ToJsonString());
    }

    [Fact]
    public void RngStateOfTheWrongSizeIsRefusedInsteadOfAbortingTheProcess()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        using (var bad = torch.zeros(100, dtype: ScalarType.Byte))
            SafeTensorsTorch.Save(Path.Combine(run, "checkpoint", Checkpoint.RngFile), new Dictionary<string, Tensor> { ["torch_cpu"] = bad });
        var e = Assert.IsType<InvalidDataException>(ResumeFails(run));
        Assert.Contains("'torch_cpu' must be", e.Message);
        Assert.Contains("[100]", e.Message);
        // Restoring it directly is refused the same way.
        Assert.Throws<InvalidDataException>(() => Checkpoint.RestoreRng(Path.Combine(run, "checkpoint")));
    }

    [Theory]
    [InlineData(3, "optimizer state is at step 4")]
    [InlineData(5, "optimizer state is at step 4")]
    public void StepThatDisagreesWithTheOptimizerIsRefused(int step, string expected)
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        EditState(run, s =>
        {
            s["step"] = step;
            s.Remove("last_evaluation");   // (a step-4 evaluation in a step-3 checkpoint is refused on its own)
        });
        var e = Assert.IsType<InvalidDataException>(ResumeFails(run));
        Assert.Contains(step < 4 ? "is 4, but the checkpoint is at step 3" : expected, e.Message);
    }

    [Theory]
    [InlineData("elapsed_seconds", -1e300)]
    [InlineData("elapsed_seconds", 1e300)]
    [InlineData("tokens_seen", -5)]
    [InlineData("next_learning_rate", -1)]
    public void TrainerStateFieldsOutOfRangeAreRefused(string field, double value)
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        EditState(run, s => s[field] = value);
        var e = Assert.Throws<InvalidDataException>(() => TrainerState.Load(Path.Combine(run, "checkpoint")));
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void ScheduleThatDisagreesWithItsOptionsIsRefused()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        EditState(run, s => s["schedule"]!["peak"] = 0.5);
        Assert.Contains("schedule", Assert.Throws<InvalidDataException>(() => TrainerState.Load(Path.Combine(run, "checkpoint"))).Message);
    }

    public static TheoryData<string, string> ExactnessBreakers() => new()
    {
        { "seed", "seed 7 → 8" },
        { "batch", "batch_size 8 → 16" },
        { "accumulation", "grad_accumulation 1 → 2" },
        { "lr", "learning_rate 0.003 → 0.001" },
        { "warmup", "warmup_steps 3 → 5" },
        { "decay", "weight_decay 0.01 → 0" },
        { "clip", "grad_clip 1 → 0.5" },
    };

    [Theory]
    [MemberData(nameof(ExactnessBreakers))]
    public void ResumeRefusesAChangeThatBreaksExactness(string change, string expected)
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        var o = TrainingFixtures.TinyOptions(run) with { Steps = 8 };
        o = change switch
        {
            "seed" => o with { Seed = 8 },
            "batch" => o with { BatchSize = 16 },
            "accumulation" => o with { GradAccumulation = 2 },
            "lr" => o with { LearningRate = 1e-3 },
            "warmup" => o with { WarmupSteps = 5 },
            "decay" => o with { WeightDecay = 0 },
            _ => o with { GradClip = 0.5 },
        };
        var e = Assert.IsType<ArgumentException>(ResumeFails(run, o));
        Assert.Contains("cannot resume", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ResumeRefusesOtherData()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        using var other = new SyntheticTaskData(SyntheticTasks.Create(SyntheticTasks.Copy, new SyntheticTaskOptions(Length: 4)),
            TrainingDataSpec.ForTask(SyntheticTasks.Copy, new SyntheticTaskOptions(Length: 4)));
        var e = Assert.IsType<ArgumentException>(ResumeFails(run, data: other));
        Assert.Contains("task length '5' → '4'", e.Message);
    }

    [Fact]
    public void ResumeMayChangeStepsAndIntervalsAndKeepsTheSavedSchedule()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions(run) with { Steps = 20, EvalEvery = 3, LogEvery = 2, CheckpointEvery = 5, SampleEvery = 4 };
        using var trainer = Trainer.Resume(run, data, options);
        Assert.Equal(4, trainer.Step);
        // The schedule of the 4-step run: raising the steps continues at its final rate instead of re-stretching the cosine.
        Assert.Equal(4, trainer.Schedule.TotalSteps);
        Assert.Equal(TrainerState.Load(Path.Combine(run, "checkpoint")).Schedule, trainer.Schedule);
    }

    // ---- the CUDA generator ------------------------------------------------------------------------------------------

    [Fact]
    public void OnCudaTheCheckpointHoldsTheGeneratorStateTheNextStepStartsFrom()
    {
        var cuda = new Device(DeviceType.CUDA, 0);
        var state = TrainingRng.Capture(cuda, seed: 7, step: 5);
        try
        {
            Assert.Equal([TrainingRng.CpuKey, TrainingRng.CudaKey], state.Keys.Order());
            var bytes = state[TrainingRng.CudaKey].bytes.ToArray();
            Assert.Equal(TrainingRng.CudaStateBytes, bytes.Length);
            Assert.Equal(TrainingRng.CudaSeed(7, 5), BitConverter.ToInt64(bytes, 0));   // PyTorch's layout: seed, then offset 0
            Assert.Equal(0L, BitConverter.ToInt64(bytes, 8));
            TrainingRng.Check(state, "test");
        }
        finally { foreach (var t in state.Values) t.Dispose(); }

        // Distinct per step and per seed, and reproducible.
        var seeds = Enumerable.Range(0, 1000).Select(s => TrainingRng.CudaSeed(7, s)).Concat(Enumerable.Range(0, 1000).Select(s => TrainingRng.CudaSeed(8, s))).ToList();
        Assert.Equal(seeds.Count, seeds.Distinct().Count());
        Assert.Equal(TrainingRng.CudaSeed(7, 5), TrainingRng.CudaSeed(7, 5));

        var cpu = TrainingRng.Capture(CPU, 7, 5);
        try { Assert.Equal([TrainingRng.CpuKey], cpu.Keys); }
        finally { foreach (var t in cpu.Values) t.Dispose(); }
    }

    [Fact]
    public void CudaGeneratorStateOfTheWrongSizeIsRefused()
    {
        using var cpu = torch.random.get_rng_state();
        using var bad = torch.zeros(8, dtype: ScalarType.Byte);
        var e = Assert.Throws<InvalidDataException>(() => TrainingRng.Check(new Dictionary<string, Tensor> { ["torch_cpu"] = cpu, ["torch_cuda"] = bad }, "rng"));
        Assert.Contains("'torch_cuda' must be 16 bytes", e.Message);
    }

    // ---- time-based checkpoints ------------------------------------------------------------------------------------

    [Fact]
    public void ATimeIntervalCheckpointsBesideTheStepInterval()
    {
        using var tmp = new TempDir();
        using var data = TrainingFixtures.CopyTask();
        var seen = new RecordingObserver();
        var options = TrainingFixtures.TinyOptions(Path.Combine(tmp.Path, "run")) with { Steps = 4, CheckpointEvery = 0, CheckpointEverySeconds = 1e-6 };
        using (var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options)) trainer.Run(seen);
        Assert.Equal([1, 2, 3, 4], seen.Checkpoints);

        var none = new RecordingObserver();
        using (var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options with { OutDir = Path.Combine(tmp.Path, "other"), CheckpointEverySeconds = 0 }))
            trainer.Run(none);
        Assert.Equal([4], none.Checkpoints);
        Assert.Equal(600, new TrainOptions().CheckpointEverySeconds);
    }

    // ---- a corpus that moved ----------------------------------------------------------------------------------------

    [Fact]
    public void AMovedCorpusIsFoundByItsRelativePathOrAcceptedByItsContent()
    {
        using var tmp = new TempDir();
        var project = Path.Combine(tmp.Path, "project");
        var corpus = Path.Combine(project, "corpus.txt");
        Directory.CreateDirectory(project);
        File.WriteAllText(corpus, string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 40)));
        var run = Path.Combine(project, "run");
        var cache = new TextDatasetOptions(CacheDirectory: Path.Combine(tmp.Path, "cache"));
        using (var data = new TextWindowData(TextDataset.Open(corpus, ByteTokenizer.Instance, cache), 8))
        using (var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(numTokens: 256), data, TrainingFixtures.TinyOptions(run) with { Steps = 2 }))
            trainer.Run();
        var saved = TrainingDataSpec.Load(Path.Combine(run, "checkpoint"));
        Assert.Equal(Path.Combine("..", "..", "corpus.txt"), saved.RelativePath);
        Assert.Equal(64, saved.ContentSha256!.Length);

        // The run and its corpus move together: data.json's relative path finds it.
        var moved = Path.Combine(tmp.Path, "moved");
        Directory.Move(project, moved);
        var checkpoint = Path.Combine(moved, "run", "checkpoint");
        var spec = TrainingDataSpec.Load(checkpoint);
        Assert.Throws<FileNotFoundException>(() => spec.Open(checkpoint));
        using (var data = (TextWindowData)spec.Open(checkpoint, checkpoint))
        {
            Assert.Equal(Path.Combine(moved, "corpus.txt"), data.Dataset.SourcePath);
            using var trainer = Trainer.Resume(checkpoint, data, TrainingFixtures.TinyOptions(Path.Combine(moved, "run")) with { Steps = 3 });
            trainer.Run();
        }
        // The corpus was copied elsewhere: accepted by content; a different corpus is refused.
        var copy = Path.Combine(tmp.Path, "copy.txt");
        File.Copy(Path.Combine(moved, "corpus.txt"), copy);
        Assert.Equal(Path.GetFullPath(copy), spec.WithMovedCorpus(copy).Path);
        File.AppendAllText(copy, "!");
        Assert.Contains("is not the corpus this run was trained on", Assert.Throws<ArgumentException>(() => spec.WithMovedCorpus(copy)).Message);
    }

    // ---- the run lock ---------------------------------------------------------------------------------------------------

    [Fact]
    public void ALiveOwnerKeepsTheRunDirectoryAndAStaleLockIsTakenOver()
    {
        using var tmp = new TempDir();
        var lockFile = Path.Combine(tmp.Path, RunLock.FileName);
        using var sleeper = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        try
        {
            var start = File.ReadAllText($"/proc/{sleeper.Id}/stat");
            var ticks = start[(start.LastIndexOf(')') + 2)..].Split(' ')[19];
            File.WriteAllText(lockFile, $$"""{"pid": {{sleeper.Id}}, "start": "boot+{{ticks}}", "started_at": "2026-01-01 00:00:00"}""");
            var e = Assert.Throws<RunLockedException>(() => RunLock.Acquire(tmp.Path));
            Assert.Contains($"in use by process {sleeper.Id}", e.Message);

            // The same pid with another start time is a reused pid: stale.
            File.WriteAllText(lockFile, $$"""{"pid": {{sleeper.Id}}, "start": "boot+1"}""");
            using (RunLock.Acquire(tmp.Path)) Assert.Contains($"\"pid\":{Environment.ProcessId}", File.ReadAllText(lockFile));
            Assert.False(File.Exists(lockFile), "released on dispose");
        }
        finally
        {
            sleeper.Kill();
            sleeper.WaitForExit();
        }
        // Its process is gone now: stale.
        File.WriteAllText(lockFile, $$"""{"pid": {{sleeper.Id}}, "start": "boot+1"}""");
        using (RunLock.Acquire(tmp.Path)) { }
        output.WriteLine("stale locks taken over");
    }

    // ---- a full disk during a checkpoint -------------------------------------------------------------------------------

    /// <summary>
    /// On a small tmpfs the second checkpoint cannot be written: the error names the checkpoint and the cause, and the
    /// first checkpoint is still complete. Needs root to mount the tmpfs; elsewhere it says so and checks nothing.
    /// </summary>
    [Fact]
    public void AFullDiskDuringACheckpointIsAnIOErrorAndLeavesThePreviousOne()
    {
        using var tmp = new TempDir();
        // The size of one checkpoint, written on the ordinary disk.
        var probe = TrainTiny(tmp, steps: 1);
        long checkpointBytes = new DirectoryInfo(Path.Combine(probe, "checkpoint")).EnumerateFiles().Sum(f => (f.Length + 4095) / 4096 * 4096);

        var mount = Path.Combine(tmp.Path, "small");
        Directory.CreateDirectory(mount);
        long size = (checkpointBytes * 3 / 2 + 8192 + 4095) / 4096 * 4096;
        if (!Run("mount", $"-t tmpfs -o size={size} tmpfs {mount}"))
        {
            output.WriteLine("mounting a tmpfs needs root; not checked here");
            return;
        }
        try
        {
            using var data = TrainingFixtures.CopyTask();
            var run = Path.Combine(mount, "run");
            using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions(run) with { Steps = 5, CheckpointEvery = 1, LogEvery = 100 });
            var e = Assert.ThrowsAny<IOException>(() => trainer.Run());
            Assert.Contains("could not write the checkpoint", e.Message);
            Assert.Contains("No space left on device", e.Message);
            Assert.Contains("left as it was", e.Message);
            var state = TrainerState.Load(Checkpoint.Resolve(run));
            Assert.Equal(1, state.Step);
            using var contents = Checkpoint.Read(Checkpoint.Resolve(run));
            Assert.Empty(Directory.GetDirectories(run, ".checkpoint.tmp-*"));
        }
        finally
        {
            Run("umount", mount);
        }
    }

    static bool Run(string file, string args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false })!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }
}
