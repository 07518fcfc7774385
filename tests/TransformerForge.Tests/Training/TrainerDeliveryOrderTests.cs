using TransformerForge.Tests.Data;
using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

/// <summary>
/// Step reports are delivered before the samples and the checkpoint of their step, even when that step is no log
/// step: a reader of the events (or of metrics.jsonl) never sees a step's samples or checkpoint before the step.
/// </summary>
public class TrainerDeliveryOrderTests
{
    [Fact]
    public void StepsArriveBeforeTheSamplesAndCheckpointOfTheirStep()
    {
        using var tmp = new TempDir();
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions(tmp.Path) with
        {
            Steps = 8, LogEvery = 100, EvalEvery = 0, SampleEvery = 3, SampleCount = 1, SampleLength = 4,
            CheckpointEvery = 5, CheckpointEverySeconds = 0,
        };
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options);
        var events = new EventLog();
        trainer.Run(events, stopAfter: 6);
        Assert.Equal(new[] { "step 1", "step 2", "step 3", "samples 3", "step 4", "step 5", "checkpoint 5", "step 6", "samples 6", "checkpoint 6" },
            events.Events);
    }

    sealed class EventLog : ITrainingObserver
    {
        public List<string> Events { get; } = new();
        public void OnStep(StepReport report) => Events.Add($"step {report.Step}");
        public void OnSamples(int step, IReadOnlyList<string> samples) => Events.Add($"samples {step}");
        public void OnCheckpoint(int step, string path) => Events.Add($"checkpoint {step}");
    }
}
