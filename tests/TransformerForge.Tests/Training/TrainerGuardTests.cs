using System.Diagnostics;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Tests.Data;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

/// <summary>What <see cref="Trainer"/> refuses and the exact words it uses; <see cref="Trainer.TimedStep"/>'s phases.</summary>
public class TrainerGuardTests
{
    [Fact]
    public void NullArgumentsAreRefusedByName()
    {
        using var data = TrainingFixtures.CopyTask();
        Assert.Equal("model", Assert.Throws<ArgumentNullException>(() =>
            new Trainer(null!, TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions())).ParamName);
        Assert.Equal("data", Assert.Throws<ArgumentNullException>(() =>
            Trainer.Resume("nowhere", null!, TrainingFixtures.TinyOptions())).ParamName);
        using var model = TransformerForge.Models.ModelFactory.CreateLanguageModel(TrainingFixtures.TinyDecoder());
        Assert.Equal("config", Assert.Throws<ArgumentNullException>(() =>
            new Trainer(model, null!, data, TrainingFixtures.TinyOptions())).ParamName);
        Assert.Equal("data", Assert.Throws<ArgumentNullException>(() =>
            new Trainer(model, TrainingFixtures.TinyDecoder(), null!, TrainingFixtures.TinyOptions())).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentNullException>(() =>
            new Trainer(model, TrainingFixtures.TinyDecoder(), data, null!)).ParamName);
        Assert.Equal("training option batch_size must be a positive integer, got 0", Assert.Throws<ArgumentException>(() =>
            new Trainer(model, TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions() with { BatchSize = 0 })).Message);
    }

    [Fact]
    public void ResumeValidatesTheOptionsFirst()
    {
        using var data = TrainingFixtures.CopyTask();
        var e = Assert.Throws<ArgumentException>(() => Trainer.Resume("/nonexistent/run", data, TrainingFixtures.TinyOptions() with { Steps = 0 }));
        Assert.Equal("training option steps must be a positive integer, got 0", e.Message);
    }

    [Fact]
    public void UnseededRandomSamplingIsRefusedAndSeededOrGreedyIsTaken()
    {
        using var data = TrainingFixtures.CopyTask();
        var config = TrainingFixtures.TinyDecoder();
        var e = Assert.Throws<ArgumentException>(() => Trainer.Create(config, data, TrainingFixtures.TinyOptions(), new SamplingOptions { Greedy = false, Seed = null }));
        Assert.StartsWith("sampling options for a run's samples need a Seed: unseeded sampling advances the global torch RNG", e.Message);
        using (Trainer.Create(config, data, TrainingFixtures.TinyOptions(), new SamplingOptions { Greedy = true, Seed = null })) { }
        using (Trainer.Create(config, data, TrainingFixtures.TinyOptions(), new SamplingOptions { Greedy = false, Seed = 3 })) { }
    }

    [Fact]
    public void NonCausalLayersAreRefusedOnTheTypeKey()
    {
        using var data = TrainingFixtures.CopyTask();
        var config = TrainingFixtures.TinyDecoder();
        config = config with { AttnLayers = config.AttnLayers with { Type = LayerStackType.Encoder } };
        var e = Assert.Throws<ConfigException>(() => Trainer.Create(config, data, TrainingFixtures.TinyOptions()));
        Assert.Equal("attn_layers.type", e.Key);
        Assert.StartsWith("next-token training needs causal layers (Decoder), got ", e.Problem);
    }

    [Fact]
    public void ANaNLossIsReportedAsTheLoss()
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions());
        using (no_grad()) trainer.Model.named_parameters().First(p => p.name == "to_logits.weight").parameter.fill_(double.NaN);
        var e = Assert.Throws<NonFiniteLossException>(() => trainer.Run());
        Assert.Equal("training stopped at step 1: the loss is NaN (try a lower learning rate, more warmup or gradient clipping)", e.Message);
        Assert.True(double.IsNaN(e.Value));
    }

    [Fact]
    public void TimedStepChargesEachPhaseOnceAndThrowsOnANaNLoss()
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions());
        var clock = Stopwatch.StartNew();
        var t = trainer.TimedStep();
        double wall = clock.Elapsed.TotalSeconds;
        Assert.Equal(1, trainer.Step);
        Assert.True(t.Forward > 0 && t.Backward > 0 && t.Optimizer > 0, $"{t}");
        Assert.True(t.Total <= wall, $"{t.Total} > {wall}");
        Assert.Equal(t.Forward + t.Backward + t.Optimizer, t.Total);
        Assert.Equal(t.ForwardCpu + t.BackwardCpu + t.OptimizerCpu, t.TotalCpu);
        Assert.True(t.ForwardCpu >= 0 && t.BackwardCpu >= 0 && t.OptimizerCpu >= 0, $"{t}");
        Assert.True(t.TotalCpu <= wall * Environment.ProcessorCount + 0.05, $"{t.TotalCpu} CPU seconds in {wall} s");
        Assert.True(double.IsFinite(t.Loss) && t.Loss > 0);

        using (no_grad()) trainer.Model.named_parameters().First(p => p.name == "to_logits.weight").parameter.fill_(double.NaN);
        var e = Assert.Throws<NonFiniteLossException>(() => trainer.TimedStep());
        Assert.StartsWith("training stopped at step 2: the loss is NaN", e.Message);
    }

    [Fact]
    public void TheStateFileIsIndentedForPeopleAndMissingOptionsAreNamed()
    {
        using var tmp = new TempDir();
        new TrainerState { Options = TrainingFixtures.TinyOptions() }.Save(tmp.Path);
        Assert.Contains("\n  \"step\": 0,", File.ReadAllText(Path.Combine(tmp.Path, TrainerState.FileName)).ReplaceLineEndings("\n"));
        new TrainerState { Options = null! }.Save(tmp.Path);
        var e = Assert.Throws<InvalidDataException>(() => TrainerState.Load(tmp.Path));
        Assert.EndsWith(": options are missing", e.Message);
    }
}
