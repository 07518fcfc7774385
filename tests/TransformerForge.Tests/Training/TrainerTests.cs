using TorchSharp;
using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Runtime;
using TransformerForge.Tests.Data;
using TransformerForge.Tests.Support;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

public class TrainerTests
{
    [Fact]
    public void LearnsTheCopyTask()
    {
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions() with { Steps = 150, BatchSize = 32, LearningRate = 1e-2, EvalEvery = 50, LogEvery = 10 };
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options);
        var before = trainer.Evaluate();
        var seen = new RecordingObserver();
        var result = trainer.Run(seen);
        Assert.Equal(150, result.Step);
        Assert.Equal(StopReason.Completed, result.Reason);
        Assert.Equal(150, seen.Steps.Count);
        Assert.Equal(new[] { 50, 100, 150 }, seen.Evaluations.Select(e => e.Step));
        Assert.True(result.LastEvaluation!.Loss < before.Loss / 3, $"loss {before.Loss} -> {result.LastEvaluation.Loss}");
        Assert.NotNull(result.LastEvaluation.ExactMatch);
        Assert.Null(result.LastEvaluation.BitsPerUnit);
        Assert.True(result.TokensPerSecond > 0);
    }

    [Fact]
    public void NonFiniteLossStopsWithTheStep()
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions());
        trainer.Run(stopAfter: 3);
        using (no_grad()) trainer.Model.named_parameters().First(p => p.name == "to_logits.weight").parameter.fill_(double.NaN);
        var e = Assert.Throws<NonFiniteLossException>(() => trainer.Run());
        Assert.Equal(4, e.Step);
        Assert.Contains("step 4", e.Message);
        Assert.Contains("NaN", e.Message);
    }

    [Fact]
    public void NonFiniteLossIsReadOnTheNextLogStepAndNamesTheStepItHappened()
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions() with { LogEvery = 5 });
        var seen = new RecordingObserver();
        trainer.Run(seen, stopAfter: 2);
        Assert.Equal(new[] { 1, 2 }, seen.Steps.Select(s => s.Step));
        Assert.All(seen.Steps, s => Assert.True(double.IsFinite(s.Loss) && double.IsFinite(s.GradNorm)));
        using (no_grad()) trainer.Model.named_parameters().First(p => p.name == "to_logits.weight").parameter.fill_(double.NaN);
        var after = new RecordingObserver();
        var e = Assert.Throws<NonFiniteLossException>(() => trainer.Run(after));
        // Steps 3-5 ran without waiting for the device; step 5 read their losses and found step 3's.
        Assert.Equal(3, e.Step);
        Assert.Equal(5, trainer.Step);
        Assert.Empty(after.Steps);
    }

    [Fact]
    public void MemoryStaysFlatAcrossSteps()
    {
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions() with { Steps = 400, EvalEvery = 20, SampleEvery = 20, SampleCount = 1, GradAccumulation = 2 };
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options);
        var stats = DisposeScopeManager.Statistics;
        trainer.Run(stopAfter: 20);   // warm up: lazily created gradients, caches
        long Outside() => stats.CreatedOutsideScopeCount - stats.DisposedOutsideScopeCount;
        long live0 = stats.ThreadTotalLiveCount, outside0 = Outside();
        trainer.Run(stopAfter: 60);
        long live1 = stats.ThreadTotalLiveCount, outside1 = Outside();
        trainer.Run(stopAfter: 220);
        long live2 = stats.ThreadTotalLiveCount, outside2 = Outside();
        // 40 steps and then 160 steps may leave the same constant number of tensors alive, not more per step.
        Assert.Equal(live1 - live0, live2 - live1);
        Assert.True(outside2 - outside1 <= outside1 - outside0,
            $"tensors made outside dispose scopes grow with steps: +{outside1 - outside0} over 40 steps, +{outside2 - outside1} over 160");
    }

    [Fact]
    public void RejectsWindowsLongerThanTheModel()
    {
        using var data = TrainingFixtures.CopyTask();   // inputs of 10 tokens
        var e = Assert.Throws<ArgumentException>(() => Trainer.Create(TrainingFixtures.TinyDecoder(maxSeqLen: 8), data, TrainingFixtures.TinyOptions()));
        Assert.Contains("seq_len 10", e.Message);
        Assert.Contains("max_seq_len 8", e.Message);
    }

    [Fact]
    public void RejectsVocabularyLargerThanTheModel()
    {
        using var data = TrainingFixtures.CopyTask();   // 11 tokens
        var e = Assert.Throws<ArgumentException>(() => Trainer.Create(TrainingFixtures.TinyDecoder(numTokens: 5), data, TrainingFixtures.TinyOptions()));
        Assert.Contains("num_tokens is 5", e.Message);
    }

    [Fact]
    public void RejectsNonCausalLayers()
    {
        using var data = TrainingFixtures.CopyTask();
        var config = TrainingFixtures.TinyDecoder();
        config = config with { AttnLayers = config.AttnLayers with { Type = LayerStackType.Encoder } };
        var e = Assert.Throws<ConfigException>(() => Trainer.Create(config, data, TrainingFixtures.TinyOptions()));
        Assert.Contains("causal", e.Message);
    }

    [Fact]
    public void RejectsBadOptions()
    {
        var e = Assert.Throws<ArgumentException>(() => (TrainingFixtures.TinyOptions() with { Steps = 0 }).Validate());
        Assert.Contains("steps", e.Message);
        e = Assert.Throws<ArgumentException>(() => (TrainingFixtures.TinyOptions() with { MinLrRatio = 2 }).Validate());
        Assert.Contains("min_lr_ratio", e.Message);
    }

    [Fact]
    public void TextDataReportsBitsPerByteAndSamples()
    {
        TorchRuntime.EnsureLoaded();
        using var tmp = new TempDir();
        var corpus = tmp.File("corpus.txt", string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 200)));
        using var data = TextWindowData.Open(corpus, TransformerForge.Data.Tokenizers.Create("bytes"), 16,
            TrainingDataSpec.ForText(corpus, "bytes", 16)) ;
        var options = TrainingFixtures.TinyOptions(Path.Combine(tmp.Path, "run")) with { Steps = 30, EvalEvery = 30, SampleEvery = 30, SampleLength = 8 };
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(numTokens: 256, maxSeqLen: 16), data, options);
        var seen = new RecordingObserver();
        var result = trainer.Run(seen);
        var eval = result.LastEvaluation!;
        Assert.Equal("byte", eval.Unit);
        Assert.Equal(eval.Loss / Math.Log(2), eval.BitsPerUnit!.Value, 12);
        Assert.Equal(Math.Exp(eval.Loss), eval.Perplexity, 12);
        Assert.Null(eval.ExactMatch);
        Assert.Equal(2, seen.Samples.Count);
        Assert.All(seen.Samples, s => Assert.Contains("⟶", s));
        Assert.True(File.Exists(Path.Combine(tmp.Path, "run", "checkpoint", "tokenizer.json")));
    }
}

/// <summary>Resume exactness compares losses bit for bit, so no other test may touch the global torch RNG meanwhile.</summary>
[Collection(SerialCollection.Name)]
public class TrainerResumeTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ResumeContinuesExactlyAsAnUninterruptedRun(bool flatOptimizer)
    {
        // Dropout and gradient accumulation make the test see the torch RNG and the batch RNG being restored.
        var config = TrainingFixtures.TinyDecoder(dropout: 0.1);
        using var tmp = new TempDir();
        var options = TrainingFixtures.TinyOptions() with { GradAccumulation = 2, EvalEvery = 4, FlatOptimizer = flatOptimizer };
        using var data = TrainingFixtures.CopyTask();

        // Both runs start from the same weights, perturbed as the fixtures are, and the same torch seed.
        Trainer Fresh(string outDir, out TransformerForge.Models.LanguageModel model)
        {
            torch.random.manual_seed(options.Seed);
            model = Weights.Perturb(TransformerForge.Models.ModelFactory.CreateLanguageModel(config));
            return new Trainer(model, config, data, options with { OutDir = outDir });
        }

        var whole = new RecordingObserver();
        using (var trainer = Fresh(Path.Combine(tmp.Path, "whole"), out var wholeModel))
        using (wholeModel)
            trainer.Run(whole);

        var runDir = Path.Combine(tmp.Path, "split");
        var first = new RecordingObserver();
        using (var trainer = Fresh(runDir, out var firstModel))
        using (firstModel)
        {
            var r = trainer.Run(first, stopAfter: 5);
            Assert.Equal(StopReason.StopRequested, r.Reason);
            Assert.Equal(5, r.Step);
        }
        // Something else uses the global RNG in between; the checkpoint's RNG state must win.
        torch.random.manual_seed(999);
        using var __ = torch.rand(100);
        var second = new RecordingObserver();
        using (var trainer = Trainer.Resume(runDir, data, options with { OutDir = runDir }))
        {
            Assert.Equal(5, trainer.Step);
            trainer.Run(second);
        }

        var split = first.Steps.Concat(second.Steps).ToList();
        Assert.Equal(whole.Steps.Select(s => s.Step), split.Select(s => s.Step));
        foreach (var (a, b) in whole.Steps.Zip(split))
        {
            Assert.True(Math.Abs(a.Loss - b.Loss) <= 1e-6, $"step {a.Step}: loss {a.Loss} uninterrupted, {b.Loss} resumed");
            Assert.Equal(a.LearningRate, b.LearningRate, 15);
        }
        Assert.Equal(whole.Evaluations.Select(e => e.Loss), first.Evaluations.Concat(second.Evaluations).Select(e => e.Loss));

        // The final weights agree too.
        var (_, a1) = ModelDirectory.Load(Checkpoint.Resolve(Path.Combine(tmp.Path, "whole")));
        var (_, b1) = ModelDirectory.Load(Checkpoint.Resolve(runDir));
        using (a1) using (b1)
            foreach (var (name, t) in a1.state_dict())
                Assert.True(t.allclose(b1.state_dict()[name], rtol: 0, atol: 1e-6), name);

        // metrics.jsonl of the resumed run has each step once.
        var trainSteps = MetricsLog.Read(Path.Combine(runDir, MetricsLog.FileName))
            .Where(o => o["kind"]!.GetValue<string>() == "train").Select(o => o["step"]!.GetValue<int>()).ToList();
        Assert.Equal(Enumerable.Range(1, 12), trainSteps);
    }
}
