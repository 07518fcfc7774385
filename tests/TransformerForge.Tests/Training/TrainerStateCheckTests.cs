using TransformerForge.Tests.Data;
using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

/// <summary>
/// <see cref="TrainerState.Load"/> field by field, without training: a state is written as it is (Save checks
/// nothing), read back, and each bound's value just inside loads while the one just outside is refused, naming the
/// file and the field.
/// </summary>
public class TrainerStateCheckTests
{
    static readonly TrainOptions Options = TrainingFixtures.TinyOptions();   // lr 3e-3, warmup 3, 12 steps, min ratio 0.1
    static readonly TrainerState Valid = new()
    {
        Step = 4, Options = Options, Schedule = LearningRateSchedule.From(Options), NextLearningRate = 1e-3,
        ElapsedSeconds = 2, TokensSeen = 320,
    };

    static TrainerState RoundTrip(TrainerState state)
    {
        using var tmp = new TempDir();
        state.Save(tmp.Path);
        return TrainerState.Load(tmp.Path);
    }

    static string Refused(TrainerState state)
    {
        using var tmp = new TempDir();
        state.Save(tmp.Path);
        var e = Assert.Throws<InvalidDataException>(() => TrainerState.Load(tmp.Path));
        Assert.StartsWith(Path.Combine(tmp.Path, TrainerState.FileName) + ": ", e.Message);
        return e.Message[(Path.Combine(tmp.Path, TrainerState.FileName).Length + 2)..];
    }

    [Fact]
    public void AValidStateComesBackEqual()
    {
        var state = Valid with
        {
            LastEvaluation = new EvaluationMetrics(4, 1.5, Math.Exp(1.5), null, null, 0.25, 16), LossScale = 1024,
            LossScaleGoodSteps = 7, Threads = 2,
        };
        var back = RoundTrip(state);
        Assert.Equal(state with { Options = null!, LastEvaluation = null }, back with { Options = null!, LastEvaluation = null });
        Assert.Equal(state.Options, back.Options);
        Assert.Equal(state.LastEvaluation, back.LastEvaluation);
    }

    [Fact]
    public void AnotherFormatIsRefused() =>
        Assert.Equal("format is 2; this version reads format 1", Refused(Valid with { Format = 2 }));

    [Fact]
    public void StepZeroLoadsAndMinusOneIsRefused()
    {
        RoundTrip(Valid with { Step = 0 });
        Assert.Equal("step must not be negative, got -1", Refused(Valid with { Step = -1 }));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(999_999_999_999)]
    public void ElapsedSecondsInRangeLoad(double seconds) => Assert.Equal(seconds, RoundTrip(Valid with { ElapsedSeconds = seconds }).ElapsedSeconds);

    [Theory]
    [InlineData(1e12)]
    [InlineData(-1e-9)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void ElapsedSecondsOutOfRangeAreRefused(double seconds) =>
        Assert.StartsWith("elapsed_seconds must be a non-negative number of seconds, got ", Refused(Valid with { ElapsedSeconds = seconds }));

    [Fact]
    public void TokensSeenZeroLoadsAndMinusOneIsRefused()
    {
        RoundTrip(Valid with { TokensSeen = 0 });
        Assert.Equal("tokens_seen must not be negative, got -1", Refused(Valid with { TokensSeen = -1 }));
    }

    [Theory]
    [InlineData(-1e-300)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void NextLearningRateOutOfRangeIsRefused(double lr)
    {
        RoundTrip(Valid with { NextLearningRate = 0 });
        Assert.StartsWith("next_learning_rate must be a non-negative number, got ", Refused(Valid with { NextLearningRate = lr }));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void ALossScaleMustBePositiveAndFinite(double scale)
    {
        Assert.Null(RoundTrip(Valid with { LossScale = null }).LossScale);
        Assert.Equal(double.Epsilon, RoundTrip(Valid with { LossScale = double.Epsilon }).LossScale);
        Assert.StartsWith("loss_scale must be a positive number, got ", Refused(Valid with { LossScale = scale }));
    }

    [Fact]
    public void LossScaleGoodStepsZeroLoadsAndMinusOneIsRefused()
    {
        RoundTrip(Valid with { LossScaleGoodSteps = 0 });
        Assert.Equal("loss_scale_good_steps must not be negative, got -1", Refused(Valid with { LossScaleGoodSteps = -1 }));
    }

    [Fact]
    public void MissingOptionsAreRefused() => Assert.Contains("options", Refused(Valid with { Options = null! }));

    [Fact]
    public void InvalidOptionsAreRefusedWithTheOptionsMessage() =>
        Assert.Equal("training option steps must be a positive integer, got 0",
            Refused(Valid with { Options = Options with { Steps = 0 }, Schedule = null }));

    public static TheoryData<LearningRateSchedule> InvalidSchedules() => new()
    {
        new(0, 3, 12, 0.1),
        new(double.NaN, 3, 12, 0.1),
        new(double.PositiveInfinity, 3, 12, 0.1),
        new(3e-3, -1, 12, 0.1),
        new(3e-3, 3, 0, 0.1),
        new(3e-3, 3, 12, -1e-12),
        new(3e-3, 3, 12, 1 + 1e-12),
    };

    [Theory]
    [MemberData(nameof(InvalidSchedules))]
    public void AnInvalidScheduleIsRefused(LearningRateSchedule schedule) =>
        Assert.Equal($"schedule is not a valid learning-rate schedule: {schedule}", Refused(Valid with { Schedule = schedule }));

    [Fact]
    public void AScheduleAtItsBoundsLoads()
    {
        var o = Options with { WarmupSteps = 0, MinLrRatio = 1 };
        RoundTrip(Valid with { Options = o, Schedule = LearningRateSchedule.From(o) with { TotalSteps = 1 } });
        o = Options with { MinLrRatio = 0 };
        RoundTrip(Valid with { Options = o, Schedule = LearningRateSchedule.From(o) });
    }

    [Fact]
    public void AScheduleMayEndElsewhereThanTheOptionsButMustAgreeOtherwise()
    {
        var longer = LearningRateSchedule.From(Options) with { TotalSteps = 40 };
        Assert.Equal(longer, RoundTrip(Valid with { Schedule = longer }).EffectiveSchedule);
        Assert.StartsWith("schedule disagrees with the options it was saved with (",
            Refused(Valid with { Schedule = longer with { WarmupSteps = 4 } }));
        Assert.EndsWith("against learning_rate 0.003, warmup_steps 3, min_lr_ratio 0.1)",
            Refused(Valid with { Schedule = longer with { Peak = 1e-3 } }));
        Refused(Valid with { Schedule = longer with { MinRatio = 0.2 } });
    }

    [Fact]
    public void WithoutAScheduleTheOptionsGiveIt() =>
        Assert.Equal(LearningRateSchedule.From(Options), RoundTrip(Valid with { Schedule = null }).EffectiveSchedule);

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void ALastEvaluationAtOrBeforeTheStepLoads(int step) =>
        Assert.Equal(step, RoundTrip(Valid with { LastEvaluation = Evaluation(step) }).LastEvaluation!.Step);

    [Theory]
    [InlineData(5)]
    [InlineData(-1)]
    public void ALastEvaluationAfterTheStepOrNegativeIsRefused(int step) =>
        Assert.Equal($"last_evaluation.step is {step}, not between 0 and the checkpoint's step 4",
            Refused(Valid with { LastEvaluation = Evaluation(step) }));

    [Fact]
    public void AMissingFileSaysTheDirectoryIsNotACheckpoint()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<FileNotFoundException>(() => TrainerState.Load(tmp.Path));
        Assert.Equal($"'{tmp.Path}' is not a checkpoint: trainer_state.json is missing", e.Message);
        Assert.Equal(Path.Combine(tmp.Path, TrainerState.FileName), e.FileName);
    }

    [Fact]
    public void BrokenJsonIsInvalidDataNamingTheFile()
    {
        using var tmp = new TempDir();
        var file = tmp.File(TrainerState.FileName, "{ \"step\": ");
        var e = Assert.Throws<InvalidDataException>(() => TrainerState.Load(tmp.Path));
        Assert.StartsWith($"{file} is not a valid trainer state: ", e.Message);
        Assert.IsAssignableFrom<System.Text.Json.JsonException>(e.InnerException);
    }

    static EvaluationMetrics Evaluation(int step) => new(step, 1, Math.E, null, null, null, 8);
}
