using TorchSharp;
using TransformerForge.Data;
using TransformerForge.IO;
using TransformerForge.Tests.Data;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

/// <summary>Mixed precision compares runs step by step, so no other test may touch the global torch RNG meanwhile.</summary>
[Collection(SerialCollection.Name)]
public class MixedPrecisionTests
{
    static TrainOptions Options(string precision) => TrainingFixtures.TinyOptions() with { Steps = 30, Precision = precision, LearningRate = 1e-2 };

    static List<double> Losses(string precision)
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, Options(precision));
        var seen = new RecordingObserver();
        trainer.Run(seen);
        return seen.Steps.Select(s => s.Loss).ToList();
    }

    [Fact]
    public void Bf16TrainingTracksFp32()
    {
        var fp32 = Losses(Precision.Fp32);
        var bf16 = Losses(Precision.Bf16);
        Assert.Equal(fp32.Count, bf16.Count);
        // The curves agree to bfloat16's rounding of activations, step by step, while the loss falls (by 18% in these 30 steps).
        Assert.True(fp32[^1] < fp32[0] * 0.9, $"fp32 loss {fp32[0]} -> {fp32[^1]}: the run must learn for the comparison to mean something");
        for (int i = 0; i < fp32.Count; i++)
            Assert.True(Math.Abs(bf16[i] - fp32[i]) <= 0.03 * fp32[i] + 0.02, $"step {i + 1}: bf16 loss {bf16[i]}, fp32 {fp32[i]}");
        // And they are not the same computation: bf16 really ran in low precision.
        Assert.NotEqual(fp32, bf16);
    }

    [Fact]
    public void WorkingCopyIsLowPrecisionAndMasterStaysFloat32()
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, Options(Precision.Bf16) with { Steps = 3 });
        trainer.Run();
        Assert.All(trainer.Model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        var working = trainer.MixedPrecision!.Module;
        Assert.All(working.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        // After each step the working copy holds the master weights, rounded.
        var master = trainer.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in working.named_parameters())
            Assert.True(p.to_type(ScalarType.Float32).allclose(master[name].to_type(ScalarType.BFloat16).to_type(ScalarType.Float32)), name);
    }

    [Fact]
    public void Fp16LossScalingBacksOffOnOverflowAndSkipsTheStep()
    {
        using var data = TrainingFixtures.CopyTask();
        // 2^40 times the loss overflows float16 (largest 65504) in the backward pass.
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, Options(Precision.Fp16) with { InitialLossScale = Math.Pow(2, 40) });
        var before = trainer.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.clone());
        var seen = new RecordingObserver();
        trainer.Run(seen, stopAfter: 1);
        Assert.Equal(Math.Pow(2, 39), trainer.LossScaler!.Scale);
        Assert.Equal(1, trainer.LossScaler.SkippedSteps);
        Assert.False(double.IsFinite(seen.Steps[0].GradNorm));
        Assert.True(double.IsFinite(seen.Steps[0].Loss));
        foreach (var (name, p) in trainer.Model.named_parameters())
            Assert.True(p.eq(before[name]).all().item<bool>(), $"{name} changed in a skipped step");

        // Halving each time, the scale comes down until steps go through, and then training proceeds.
        trainer.Run(seen, stopAfter: 30);
        Assert.True(trainer.LossScaler.Scale <= Math.Pow(2, 24), $"scale {trainer.LossScaler.Scale}");
        Assert.True(trainer.LossScaler.SkippedSteps < 30);
        Assert.Contains(trainer.Model.named_parameters(), p => !p.parameter.eq(before[p.name]).all().item<bool>());
        Assert.True(double.IsFinite(seen.Steps[^1].GradNorm));
    }

    [Fact]
    public void Bf16CheckpointsAreFloat32AndResumeExactly()
    {
        using var tmp = new TempDir();
        using var data = TrainingFixtures.CopyTask();
        var options = Options(Precision.Bf16) with { Steps = 8 };
        var whole = new RecordingObserver();
        using (var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options with { OutDir = Path.Combine(tmp.Path, "whole") }))
            trainer.Run(whole);
        var split = new RecordingObserver();
        var runDir = Path.Combine(tmp.Path, "split");
        using (var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options with { OutDir = runDir }))
            trainer.Run(split, stopAfter: 3);
        var weights = SafeTensorsFile.Read(Path.Combine(Checkpoint.Resolve(runDir), ModelDirectory.WeightsFile));
        Assert.All(weights.Tensors, t => Assert.Equal(SafeTensorDType.F32, t.DType));
        using (var trainer = Trainer.Resume(runDir, data, options with { OutDir = runDir }))
            trainer.Run(split);
        // Bit for bit (the suite fixes the thread count; a different one reorders bf16 sums by ~1e-4).
        Assert.Equal(whole.Steps.Select(s => s.Loss), split.Steps.Select(s => s.Loss));
    }
}
