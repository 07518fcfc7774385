using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

/// <summary>
/// <see cref="TrainOptions.Validate"/> option by option: the exact message for a bad value, and the values just
/// inside each bound pass while those just outside are refused (pins every comparison operator).
/// </summary>
public class TrainOptionsBoundaryTests
{
    static readonly TrainOptions Good = new();

    static string Refused(TrainOptions o) => Assert.Throws<ArgumentException>(o.Validate).Message;

    [Fact]
    public void DefaultsAreValid() => Good.Validate();

    [Theory]
    [InlineData("steps", 0, "training option steps must be a positive integer, got 0")]
    [InlineData("batch_size", 0, "training option batch_size must be a positive integer, got 0")]
    [InlineData("grad_accumulation", 0, "training option grad_accumulation must be a positive integer, got 0")]
    [InlineData("learning_rate", 0, "training option learning_rate must be a positive number, got 0")]
    [InlineData("warmup_steps", -1, "training option warmup_steps must not be negative, got -1")]
    [InlineData("min_lr_ratio", -0.5, "training option min_lr_ratio must be in [0, 1], got -0.5")]
    [InlineData("weight_decay", -0.5, "training option weight_decay must not be negative, got -0.5")]
    [InlineData("beta1", 1, "training option beta1 must be in [0, 1), got 1")]
    [InlineData("beta2", 1, "training option beta2 must be in [0, 1), got 1")]
    [InlineData("epsilon", 0, "training option epsilon must be positive, got 0")]
    [InlineData("grad_clip", -0.5, "training option grad_clip must not be negative (0 turns it off), got -0.5")]
    [InlineData("eval_every", -1, "training option eval_every must not be negative, got -1")]
    [InlineData("eval_batches", 0, "training option eval_batches must be a positive integer, got 0")]
    [InlineData("sample_every", -1, "training option sample_every must not be negative, got -1")]
    [InlineData("sample_count", -1, "training option sample_count must not be negative, got -1")]
    [InlineData("sample_length", 0, "training option sample_length must be a positive integer, got 0")]
    [InlineData("log_every", 0, "training option log_every must be a positive integer, got 0")]
    [InlineData("checkpoint_every", -1, "training option checkpoint_every must not be negative, got -1")]
    [InlineData("checkpoint_every_seconds", -0.5, "training option checkpoint_every_seconds must not be negative, got -0.5")]
    [InlineData("target_exact_match", 0, "training option target_exact_match must be in (0, 1], got 0")]
    [InlineData("initial_loss_scale", 0, "training option initial_loss_scale must be a positive number, got 0")]
    public void ABadValueIsRefusedWithItsExactMessage(string option, double value, string message) =>
        Assert.Equal(message, Refused(With(option, value)));

    /// <summary>(option, value just inside its range, value just outside).</summary>
    [Theory]
    [InlineData("steps", 1, 0)]
    [InlineData("batch_size", 1, 0)]
    [InlineData("grad_accumulation", 1, 0)]
    [InlineData("learning_rate", double.Epsilon, 0)]
    [InlineData("learning_rate", double.MaxValue, double.PositiveInfinity)]
    [InlineData("learning_rate", 1e-3, double.NaN)]
    [InlineData("warmup_steps", 0, -1)]
    [InlineData("min_lr_ratio", 0, -1e-12)]
    [InlineData("min_lr_ratio", 1, 1 + 1e-12)]
    [InlineData("weight_decay", 0, -1e-12)]
    [InlineData("weight_decay", double.MaxValue, double.PositiveInfinity)]
    [InlineData("beta1", 0, -1e-12)]
    [InlineData("beta1", 0.999999, 1)]
    [InlineData("beta2", 0, -1e-12)]
    [InlineData("beta2", 0.999999, 1)]
    [InlineData("epsilon", double.Epsilon, 0)]
    [InlineData("grad_clip", 0, -1e-12)]
    [InlineData("grad_clip", double.MaxValue, double.PositiveInfinity)]
    [InlineData("eval_every", 0, -1)]
    [InlineData("eval_batches", 1, 0)]
    [InlineData("sample_every", 0, -1)]
    [InlineData("sample_count", 0, -1)]
    [InlineData("sample_length", 1, 0)]
    [InlineData("log_every", 1, 0)]
    [InlineData("checkpoint_every", 0, -1)]
    [InlineData("checkpoint_every_seconds", 0, -1e-12)]
    [InlineData("checkpoint_every_seconds", double.MaxValue, double.PositiveInfinity)]
    [InlineData("target_exact_match", 1e-12, 0)]
    [InlineData("target_exact_match", 1, 1 + 1e-12)]
    [InlineData("initial_loss_scale", double.Epsilon, 0)]
    [InlineData("initial_loss_scale", double.MaxValue, double.PositiveInfinity)]
    public void JustInsidePassesAndJustOutsideIsRefused(string option, double inside, double outside)
    {
        With(option, inside).Validate();
        Assert.StartsWith($"training option {option} ", Refused(With(option, outside)));
    }

    [Fact]
    public void NoTargetIsValid() => (Good with { TargetExactMatch = null }).Validate();

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    public void ABlankDeviceIsRefused(string device) =>
        Assert.Equal("training option device must be cpu, cuda or cuda:N", Refused(Good with { Device = device }));

    [Fact]
    public void AnUnknownPrecisionIsRefusedWithTheKnownOnes() =>
        Assert.Equal("training option precision must be one of fp32, bf16, fp16, got 'fp8'", Refused(Good with { Precision = "fp8" }));

    [Theory]
    [InlineData("bf16")]
    [InlineData("fp16")]
    public void MixedPrecisionNeedsTheFlatOptimizer(string precision)
    {
        (Good with { Precision = precision, FlatOptimizer = true }).Validate();
        (Good with { Precision = Precision.Fp32, FlatOptimizer = false }).Validate();
        Assert.Equal($"training option precision {precision} needs the flat optimizer (flat_optimizer: true)",
            Refused(Good with { Precision = precision, FlatOptimizer = false }));
    }

    [Fact]
    public void TheFirstBadOptionIsTheOneNamed() =>
        Assert.StartsWith("training option steps ", Refused(Good with { Steps = 0, BatchSize = 0, LogEvery = 0 }));

    [Fact]
    public void EffectiveBatchSizeIsBatchTimesAccumulation() =>
        Assert.Equal(12, (Good with { BatchSize = 3, GradAccumulation = 4 }).EffectiveBatchSize);

    static TrainOptions With(string option, double v) => option switch
    {
        "steps" => Good with { Steps = (int)v },
        "batch_size" => Good with { BatchSize = (int)v },
        "grad_accumulation" => Good with { GradAccumulation = (int)v },
        "learning_rate" => Good with { LearningRate = v },
        "warmup_steps" => Good with { WarmupSteps = (int)v },
        "min_lr_ratio" => Good with { MinLrRatio = v },
        "weight_decay" => Good with { WeightDecay = v },
        "beta1" => Good with { Beta1 = v },
        "beta2" => Good with { Beta2 = v },
        "epsilon" => Good with { Epsilon = v },
        "grad_clip" => Good with { GradClip = v },
        "eval_every" => Good with { EvalEvery = (int)v },
        "eval_batches" => Good with { EvalBatches = (int)v },
        "sample_every" => Good with { SampleEvery = (int)v },
        "sample_count" => Good with { SampleCount = (int)v },
        "sample_length" => Good with { SampleLength = (int)v },
        "log_every" => Good with { LogEvery = (int)v },
        "checkpoint_every" => Good with { CheckpointEvery = (int)v },
        "checkpoint_every_seconds" => Good with { CheckpointEverySeconds = v },
        "target_exact_match" => Good with { TargetExactMatch = v },
        "initial_loss_scale" => Good with { InitialLossScale = v },
        _ => throw new ArgumentOutOfRangeException(nameof(option), option, null),
    };
}
