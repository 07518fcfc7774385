using TorchSharp;
using Xunit.Abstractions;
using TransformerForge.IO;
using TransformerForge.Tests.Data;
using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

public class CheckpointTests
{
    static string TrainTiny(TempDir tmp, int steps = 4) => TrainingFixtures.TrainTiny(tmp, steps, evalEvery: 2);

    [Fact]
    public void HoldsModelOptimizerRngStateAndData()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        var dir = Checkpoint.Resolve(run);
        Assert.Equal(Path.Combine(run, "checkpoint"), dir);
        foreach (var f in Checkpoint.RequiredFiles.Append(Checkpoint.MetricsFile)) Assert.True(File.Exists(Path.Combine(dir, f)), f);

        var state = TrainerState.Load(dir);
        Assert.Equal(4, state.Step);
        Assert.Equal(4, state.LastEvaluation!.Step);
        Assert.Equal(TrainingFixtures.TinyOptions(run) with { Steps = 4, EvalEvery = 2 }, state.Options);
        Assert.Equal(state.Schedule!.At(4), state.NextLearningRate);

        var optimizer = SafeTensorsTorch.Load(Path.Combine(dir, Checkpoint.OptimizerFile));
        Assert.Equal(4L, optimizer["token_emb.weight.step"].item<long>());
        Assert.Contains("attn_layers.layers.0.1.to_q.weight.exp_avg_sq", optimizer.Keys);
        var rng = SafeTensorsTorch.Load(Path.Combine(dir, Checkpoint.RngFile));
        Assert.Equal(torch.ScalarType.Byte, rng["torch_cpu"].dtype);

        var spec = TrainingDataSpec.Load(dir);
        Assert.Equal("task", spec.Kind);
        Assert.Equal("copy", spec.Task);
        Assert.Equal(5, spec.Length);

        var (config, model) = ModelDirectory.Load(dir);
        using (model) Assert.Equal(TrainingFixtures.TinyDecoder().ToJsonString(), config.ToJsonString());
        Assert.True(File.Exists(Path.Combine(run, MetricsLog.FileName)));
    }

    [Fact]
    public void ResolveRestoresACheckpointLeftRenamedAwayByAKilledSave()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        var dir = Path.Combine(run, "checkpoint");
        // The state between ModelDirectory.Replace's two renames, plus a half-written temporary directory.
        Directory.Move(dir, dir + ".old-0123");
        Directory.CreateDirectory(Path.Combine(run, ".checkpoint.tmp-1-abc"));
        File.WriteAllText(Path.Combine(run, ".checkpoint.tmp-1-abc", "config.json"), "{");
        Assert.Equal(dir, Checkpoint.Resolve(run));
        Assert.Equal(4, TrainerState.Load(dir).Step);
        Assert.False(Directory.Exists(dir + ".old-0123"));
    }

    [Fact]
    public void ResolveNamesWhatIsMissing()
    {
        using var tmp = new TempDir();
        Assert.Throws<DirectoryNotFoundException>(() => Checkpoint.Resolve(Path.Combine(tmp.Path, "nothing")));
        var run = TrainTiny(tmp, steps: 2);
        File.Delete(Path.Combine(run, "checkpoint", Checkpoint.OptimizerFile));
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Resolve(run));
        Assert.Contains(Checkpoint.OptimizerFile, e.Message);
    }
}

/// <summary>Kills a real CLI process many times; alone, so that start-up and step timing are those of a quiet machine.</summary>
[Collection(SerialCollection.Name)]
public class CheckpointKillTests(ITestOutputHelper output)
{
    /// <summary>
    /// Starts a real <c>tforge train</c> that checkpoints after every step, SIGKILLs it at random moments (during
    /// steps, saves and start-up alike) and, every other time, just as a save has begun; checks after each kill that the
    /// checkpoint loads completely and never goes back, and that at least one kill landed inside a save.
    /// </summary>
    [Fact]
    public void KillAtAnyMomentLeavesALoadableCheckpoint()
    {
        using var tmp = new TempDir();
        var run = Path.Combine(tmp.Path, "run");
        string[] Args(bool resume) => resume
            ? new[] { "train", "--out", run, "--resume" }
            : new[] { "train", "--task", "copy", "--task-length", "5", "--dim", "16", "--depth", "1", "--heads", "2", "--batch", "8",
                      "--steps", "100000", "--checkpoint-every", "1", "--eval-every", "0", "--sample-every", "0", "--log-every", "1",
                      "--target-exact-match", "0", "--out", run };
        var random = new Random(2024);
        int lastStep = 0, kills = 0, killsDuringSave = 0, killsBetweenRenames = 0;
        bool resume = false;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(4);
        while (kills < 12 && DateTime.UtcNow < deadline)
        {
            using var child = new CliProcess(Args(resume));
            // Let it pass its first checkpoint beyond the last one, then kill after a random extra delay.
            var waitUntil = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (StepOnDisk(run) <= lastStep && DateTime.UtcNow < waitUntil && !child.HasExited) Thread.Sleep(20);
            Assert.False(child.HasExited, $"tforge exited early:\n{child.Stdout}\n{child.Stderr}");
            if (kills % 2 == 1)
            {
                // Every other kill aims at a save: the moment its temporary directory appears.
                var aimUntil = DateTime.UtcNow + TimeSpan.FromSeconds(20);
                while (!new DirectoryInfo(run).EnumerateDirectories(".checkpoint.tmp-*").Any() && DateTime.UtcNow < aimUntil && !child.HasExited)
                    Thread.SpinWait(1000);
            }
            else Thread.Sleep(random.Next(0, 250));
            child.Kill();
            kills++;
            // What the kill interrupted: a save in progress leaves a temporary or an old directory behind.
            var parent = new DirectoryInfo(run);
            bool inSave = parent.EnumerateDirectories(".checkpoint.tmp-*").Any() || parent.EnumerateDirectories("checkpoint.old-*").Any();
            bool betweenRenames = !Directory.Exists(Path.Combine(run, "checkpoint"));
            if (inSave) killsDuringSave++;
            if (betweenRenames) killsBetweenRenames++;

            var dir = Checkpoint.Resolve(run);
            var state = TrainerState.Load(dir);
            Assert.True(state.Step >= lastStep, $"checkpoint went back from step {lastStep} to {state.Step}");
            lastStep = state.Step;
            var (_, model) = ModelDirectory.Load(dir);
            model.Dispose();
            foreach (var t in SafeTensorsTorch.Load(Path.Combine(dir, Checkpoint.OptimizerFile)).Values) t.Dispose();
            foreach (var t in SafeTensorsTorch.Load(Path.Combine(dir, Checkpoint.RngFile)).Values) t.Dispose();
            TrainingDataSpec.Load(dir);
            resume = true;
        }
        output.WriteLine($"{kills} kills, {killsDuringSave} during a save, {killsBetweenRenames} between its two renames; last step {lastStep}");
        Assert.True(kills >= 3, $"only {kills} kills in the time allowed");
        Assert.True(killsDuringSave >= 1, $"no kill landed inside a save ({kills} kills)");
        Assert.True(lastStep > 0);

        // And the run still resumes and trains on.
        var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(2), "train", "--out", run, "--resume", "--steps", (lastStep + 3).ToString());
        Assert.True(code == 0, stdout + stderr);
        Assert.Equal(lastStep + 3, TrainerState.Load(Checkpoint.Resolve(run)).Step);
    }

    /// <summary>The step of the checkpoint on disk (0 when there is none yet or it is being replaced).</summary>
    static int StepOnDisk(string run)
    {
        try { return TrainerState.Load(Path.Combine(run, "checkpoint")).Step; }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException) { return 0; }
    }
}
