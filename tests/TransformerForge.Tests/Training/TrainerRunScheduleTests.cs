using TransformerForge.Tests.Data;
using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

/// <summary>
/// When <see cref="Trainer.Run"/> logs, evaluates, samples and checkpoints (multiples of each interval, the last step,
/// a stop step), why it stops, what it counts, and the (seed, step) batch RNG.
/// </summary>
public class TrainerRunScheduleTests
{
    [Fact]
    public void IntervalsFireOnTheirMultiplesAndTheLastStep()
    {
        using var tmp = new TempDir();
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions(tmp.Path) with
        {
            Steps = 7, GradAccumulation = 2, LogEvery = 3, EvalEvery = 3, SampleEvery = 3, SampleCount = 1, SampleLength = 4,
            CheckpointEvery = 3, CheckpointEverySeconds = 0,
        };
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options);
        Assert.Equal(8L * 2 * 10, trainer.TokensPerStep);
        var seen = new RecordingObserver();
        var result = trainer.Run(seen);

        Assert.Equal(StopReason.Completed, result.Reason);
        Assert.Equal(7, result.Step);
        Assert.Equal(Enumerable.Range(1, 7), seen.Steps.Select(s => s.Step));
        Assert.All(seen.Steps, s => Assert.Equal(7, s.TotalSteps));
        Assert.Equal(new[] { 3, 6, 7 }, seen.Steps.Where(s => s.IsLogStep).Select(s => s.Step));
        Assert.All(seen.Steps, s => Assert.Equal(LearningRateSchedule.From(options).At(s.Step - 1), s.LearningRate));
        Assert.All(seen.Steps, s => Assert.True(double.IsFinite(s.Loss) && s.GradNorm > 0));
        Assert.Equal(TimeSpan.Zero, seen.Steps[^1].Eta);
        Assert.Equal(new[] { 3, 6, 7 }, seen.Evaluations.Select(e => e.Step));
        Assert.Equal(3, seen.Samples.Count);
        Assert.Equal(new[] { 3, 6, 7 }, seen.Checkpoints);
        Assert.Equal(Path.GetFullPath(Path.Combine(tmp.Path, "checkpoint")), result.CheckpointPath);
        Assert.Equal(seen.Evaluations[^1], result.LastEvaluation);
        // Rates and times: positive, bounded by the wall clock (a sign or operator flipped would leave these bounds).
        Assert.All(seen.Steps.Where(s => s.IsLogStep), s => Assert.InRange(s.TokensPerSecond, 1, 1e9));
        Assert.All(seen.Steps.Zip(seen.Steps.Skip(1)), p => Assert.True(p.Second.Elapsed >= p.First.Elapsed && p.First.Elapsed > TimeSpan.Zero));
        Assert.True(result.Elapsed >= seen.Steps[^1].Elapsed);
        Assert.True(result.TokensPerSecond >= 7 * 160 / result.Elapsed.TotalSeconds, $"{result.TokensPerSecond} tokens/s over {result.Elapsed}");
        var lines = File.ReadAllLines(Path.Combine(tmp.Path, "metrics.jsonl")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!).ToList();
        int[] StepsOf(string kind) => lines.Where(l => (string?)l["kind"] == kind).Select(l => (int)l["step"]!).ToArray();
        Assert.Equal(new[] { 3, 6, 7 }, StepsOf("eval"));
        Assert.Equal(new[] { 3, 6, 7 }, StepsOf("train"));
        var state = TrainerState.Load(result.CheckpointPath!);
        Assert.Equal(7, state.Step);
        Assert.Equal(7L * 160, state.TokensSeen);
        Assert.Equal(trainer.Schedule.At(7), state.NextLearningRate);
        Assert.Equal(trainer.Threads, state.Threads);
        Assert.True(state.ElapsedSeconds > 0);
    }

    [Fact]
    public void AStopStepLogsAndCheckpointsThereButNeitherEvaluatesNorSamples()
    {
        using var tmp = new TempDir();
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions(tmp.Path) with
        {
            Steps = 8, LogEvery = 4, EvalEvery = 4, SampleEvery = 4, SampleCount = 2, SampleLength = 4, CheckpointEvery = 1,
            CheckpointEverySeconds = 0,
        };
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options);
        var seen = new RecordingObserver();
        var result = trainer.Run(seen, stopAfter: 5);

        Assert.Equal(StopReason.StopRequested, result.Reason);
        Assert.Equal(5, result.Step);
        Assert.Equal(new[] { 4, 5 }, seen.Steps.Where(s => s.IsLogStep).Select(s => s.Step));
        Assert.Equal(new[] { 4 }, seen.Evaluations.Select(e => e.Step));
        Assert.Equal(2, seen.Samples.Count);
        Assert.Equal(new[] { 1, 2, 3, 4, 5 }, seen.Checkpoints);   // not twice at step 5: the interval skips the stop step

        // A stop step past the end is the end.
        var rest = new RecordingObserver();
        var done = trainer.Run(rest, stopAfter: 100);
        Assert.Equal(StopReason.Completed, done.Reason);
        Assert.Equal(8, done.Step);
        Assert.Equal(new[] { 6, 7, 8 }, rest.Steps.Select(s => s.Step));
        Assert.Equal(new[] { 8 }, rest.Evaluations.Select(e => e.Step));
        Assert.Equal(new[] { 6, 7, 8 }, rest.Checkpoints);
        Assert.True(result.Elapsed > TimeSpan.Zero && done.Elapsed >= result.Elapsed);
        // ETA of the second session: its time so far over its steps so far, times the steps left to the stop step.
        var at6 = rest.Steps[0];
        double session = (at6.Elapsed - result.Elapsed).TotalSeconds;
        Assert.Equal(session / 1 * 2, at6.Eta.TotalSeconds, 0.01 + 0.1 * session);
        var at7 = rest.Steps[1];
        session = (at7.Elapsed - result.Elapsed).TotalSeconds;
        Assert.Equal(session / 2 * 1, at7.Eta.TotalSeconds, 0.01 + 0.1 * session);
    }

    [Fact]
    public void ZeroIntervalsEvaluateAndCheckpointOnlyAtTheEndAndSampleNever()
    {
        using var tmp = new TempDir();
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions(tmp.Path) with
        {
            Steps = 3, LogEvery = 100, EvalEvery = 0, SampleEvery = 0, SampleCount = 2, CheckpointEvery = 0, CheckpointEverySeconds = 0,
        };
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options);
        var seen = new RecordingObserver();
        trainer.Run(seen);
        Assert.Equal(new[] { 3 }, seen.Steps.Where(s => s.IsLogStep).Select(s => s.Step));
        Assert.Equal(new[] { 3 }, seen.Evaluations.Select(e => e.Step));
        Assert.Empty(seen.Samples);
        Assert.Equal(new[] { 3 }, seen.Checkpoints);
    }

    [Fact]
    public void NoSampleCountMeansNoSamples()
    {
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions() with { Steps = 2, SampleEvery = 1, SampleCount = 0 };
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options);
        var calls = new SampleCalls();
        var result = trainer.Run(calls);
        Assert.Equal(0, calls.Count);
        Assert.Null(result.CheckpointPath);
    }

    [Fact]
    public void ACancelledRunTakesNoStepAndSaysStopRequested()
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions());
        var seen = new RecordingObserver();
        var result = trainer.Run(seen, cancellation: new CancellationToken(canceled: true));
        Assert.Equal(StopReason.StopRequested, result.Reason);
        Assert.Equal(0, result.Step);
        Assert.Empty(seen.Steps);
        Assert.Equal(0, result.TokensPerSecond);
    }

    [Fact]
    public void AReachedTargetStopsAtItsEvaluationWithSamplesAndATargetEqualToTheScoreCounts()
    {
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions() with
        {
            Steps = 150, BatchSize = 32, LearningRate = 1e-2, EvalEvery = 10, SampleEvery = 1000, SampleCount = 1, SampleLength = 4,
            TargetExactMatch = 0.5,
        };
        EvaluationMetrics hit;
        using (var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options))
        {
            var seen = new RecordingObserver();
            var result = trainer.Run(seen);
            Assert.Equal(StopReason.TargetReached, result.Reason);
            hit = seen.Evaluations[^1];
            Assert.All(seen.Evaluations.SkipLast(1), e => Assert.True(e.ExactMatch < 0.5));
            Assert.True(hit.ExactMatch >= 0.5);
            Assert.True(hit.Step < 150);
            Assert.Equal(hit.Step, result.Step);
            Assert.Equal(hit, result.LastEvaluation);
            Assert.Single(seen.Samples);   // samples at the stop although 1000 does not divide the step
        }
        // The same run (same seed) with the target set to exactly the score reached stops there too: >=, not >.
        using (var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options with { TargetExactMatch = hit.ExactMatch }))
        {
            var result = trainer.Run();
            Assert.Equal(StopReason.TargetReached, result.Reason);
            Assert.Equal(hit.Step, result.Step);
        }
    }

    sealed class SampleCalls : ITrainingObserver
    {
        public int Count { get; private set; }
        public void OnSamples(int step, IReadOnlyList<string> samples) => Count++;
    }

    [Fact]
    public void TheBatchRandomIsSplitMix64OfSeedAndStep()
    {
        // SplitMix64's first output from state 0 is 0xE220A8397B1DCDAF; its low 31 bits seed the Random.
        Assert.Equal(new Random(0x7B1DCDAF).Next(), Trainer.BatchRandom(0, 0).Next());
        Assert.Equal(new Random(608795752).Next(), Trainer.BatchRandom(7, 3).Next());
        Assert.Equal(new Random(1233877867).Next(), Trainer.BatchRandom(3, 7).Next());
        Assert.Equal(new Random(611664028).Next(), Trainer.BatchRandom(-1, 5).Next());
    }

    [Fact]
    public void SavingACheckpointWithoutADirectoryIsRefused()
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions());
        var e = Assert.Throws<InvalidOperationException>(() => trainer.SaveCheckpoint());
        Assert.Equal("no checkpoint directory: set TrainOptions.OutDir or pass one", e.Message);
        using var tmp = new TempDir();
        Assert.Equal(Path.GetFullPath(tmp.Path), trainer.SaveCheckpoint(tmp.Path));
        Assert.Equal(0, TrainerState.Load(tmp.Path).Step);
    }
}
