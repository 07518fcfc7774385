using TorchSharp;
using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Tests.Data;
using TransformerForge.Tests.Training;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Tfpp;

/// <summary>Transformer++ trains, checkpoints and resumes as decoders do; every parameter learns.</summary>
[Collection(SerialCollection.Name)]
public class TransformerPlusPlusTrainingTests
{
    /// <summary>Every mixer, both layouts' dropout paths, and LSH's training rotations (drawn from the torch RNG).</summary>
    static TransformerPlusPlusConfig Config(string block = TransformerPlusPlusConfig.CodeGen) =>
        TfppFixtures.Config(block,
            TfppFixtures.Layer(4, ("mha", 1), ("sgconv", 1), ("local_attn", 1), ("lsh_attn", 1)),
            TfppFixtures.Layer(2, ("sep_conv1d", 1), ("sgconv3", 1))) with { NumTokens = 11, MaxSeqLen = 16, ResidDropout = 0.1, EmbDropout = 0.1 };

    [Theory]
    [InlineData(TransformerPlusPlusConfig.CodeGen)]
    [InlineData(TransformerPlusPlusConfig.Gpt2)]
    public void ResumeContinuesExactlyAsAnUninterruptedRun(string block)
    {
        var config = Config(block);
        using var tmp = new TempDir();
        var options = TrainingFixtures.TinyOptions() with { Steps = 8, EvalEvery = 4 };
        using var data = TrainingFixtures.CopyTask();

        var whole = new RecordingObserver();
        using (var trainer = Trainer.Create(config, data, options with { OutDir = Path.Combine(tmp.Path, "whole") }))
            trainer.Run(whole);

        var runDir = Path.Combine(tmp.Path, "split");
        var first = new RecordingObserver();
        using (var trainer = Trainer.Create(config, data, options with { OutDir = runDir }))
            trainer.Run(first, stopAfter: 3);
        torch.random.manual_seed(999);
        using var __ = torch.rand(100);
        var second = new RecordingObserver();
        using (var trainer = Trainer.Resume(runDir, data, options with { OutDir = runDir }))
            trainer.Run(second);

        var split = first.Steps.Concat(second.Steps).ToList();
        Assert.Equal(whole.Steps.Select(s => s.Step), split.Select(s => s.Step));
        foreach (var (a, b) in whole.Steps.Zip(split))
            Assert.True(Math.Abs(a.Loss - b.Loss) <= 1e-6, $"step {a.Step}: loss {a.Loss} uninterrupted, {b.Loss} resumed");
        var (savedConfig, a1) = ModelDirectory.Load(Checkpoint.Resolve(Path.Combine(tmp.Path, "whole")));
        var (_, b1) = ModelDirectory.Load(Checkpoint.Resolve(runDir));
        Assert.Equal(config.ToJsonString(), savedConfig.ToJsonString());
        using (a1) using (b1)
            foreach (var (name, t) in a1.state_dict())
                Assert.True(t.allclose(b1.state_dict()[name], rtol: 0, atol: 1e-6), name);
    }

    /// <summary>One backward reaches every parameter (Archai's unused <c>pw_linear</c> of sgconv3 aside) and one step changes each.</summary>
    [Theory]
    [InlineData(TransformerPlusPlusConfig.CodeGen)]
    [InlineData(TransformerPlusPlusConfig.Gpt2)]
    public void OneStepReachesAndChangesEveryParameter(string block)
    {
        using var model = TfppFixtures.Perturbed(Config(block));
        model.train();
        TransformerForge.Generation.Autoregressive.NextTokenLoss(model, randint(0, 11, [2, 14])).backward();
        var parameters = model.named_parameters().Where(p => !p.name.Contains("pw_linear")).ToList();
        var before = parameters.ToDictionary(p => p.name, p => p.parameter.detach().clone());
        foreach (var (name, p) in parameters)
        {
            Assert.True(p.grad is not null, $"no gradient reached {name}");
            Assert.True(p.grad!.abs().sum().item<double>() > 0, $"zero gradient for {name}");
        }
        using var opt = optim.Adam(model.parameters(), lr: 1e-3);
        opt.step();
        foreach (var (name, p) in parameters)
            Assert.False(p.detach().eq(before[name]).all().item<bool>(), $"{name} did not change after a step");
    }

    [Fact]
    public void ThePresetIsATransformerPlusPlusThatTrains()
    {
        var config = Assert.IsType<TransformerPlusPlusConfig>(ModelPresets.Create("transformer++", 11, 10, 32, 2, 4));
        Assert.Equal([new MixerHeads("mha", 2), new MixerHeads("sgconv", 1), new MixerHeads("local_attn", 1)], config.Layers[0].Mixers);
        Assert.Contains("Transformer++", ModelPresets.Describe("tfpp"));
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(config, data, TrainingFixtures.TinyOptions() with { Steps = 40, LearningRate = 1e-2 });
        var before = trainer.Evaluate().Loss;
        var after = trainer.Run().LastEvaluation!.Loss;
        Assert.True(after < before * 0.9, $"loss {before} -> {after}");
    }
}
