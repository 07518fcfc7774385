using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

/// <summary>
/// <see cref="ResumeRules"/> on its own: every option that fixes a run's arithmetic is refused when it changes, by
/// name; the steps may grow but not fall behind the checkpoint. (Stryker found beta1, beta2, epsilon and min_lr_ratio
/// unchecked by any test.)
/// </summary>
public class ResumeRulesTests
{
    static readonly TrainOptions Saved = new();
    static readonly TrainingDataSpec Data = TrainingDataSpec.ForTask("reverse");

    public static TheoryData<string, TrainOptions> Changes => new()
    {
        { "seed 1234 → 7", Saved with { Seed = 7 } },
        { "batch_size 32 → 16", Saved with { BatchSize = 16 } },
        { "grad_accumulation 1 → 2", Saved with { GradAccumulation = 2 } },
        { "learning_rate", Saved with { LearningRate = 2e-3 } },
        { "warmup_steps 100 → 50", Saved with { WarmupSteps = 50 } },
        { "min_lr_ratio", Saved with { MinLrRatio = 0.2 } },
        { "weight_decay", Saved with { WeightDecay = 0.1 } },
        { "beta1", Saved with { Beta1 = 0.8 } },
        { "beta2", Saved with { Beta2 = 0.999 } },
        { "epsilon", Saved with { Epsilon = 1e-6 } },
        { "grad_clip", Saved with { GradClip = 0.5 } },
    };

    [Theory]
    [MemberData(nameof(Changes))]
    public void EachOptionThatFixesTheArithmeticIsRefusedByName(string named, TrainOptions given)
    {
        Assert.Equal(named.Split(' ')[0], Assert.Single(ResumeRules.Differences(Saved, given)).Split(' ')[0]);
        var e = Assert.Throws<ArgumentException>(() => ResumeRules.Check("ckpt", new TrainerState { Step = 5, Options = Saved }, Data, given, Data));
        Assert.Contains("cannot resume 'ckpt' exactly: " + named, e.Message);
        Assert.Contains("start a new run to change them", e.Message);
    }

    [Fact]
    public void StepsMayGrowOrStayButNotFallBehindTheCheckpoint()
    {
        var state = new TrainerState { Step = 500, Options = Saved };
        ResumeRules.Check("ckpt", state, Data, Saved with { Steps = 500 }, Data);
        ResumeRules.Check("ckpt", state, Data, Saved with { Steps = 2000, LogEvery = 1, EvalEvery = 7, CheckpointEvery = 9 }, Data);
        var e = Assert.Throws<ArgumentException>(() => ResumeRules.Check("ckpt", state, Data, Saved with { Steps = 499 }, Data));
        Assert.Contains("is at step 500, past the 499 steps asked for", e.Message);
    }
}
