using TransformerForge.Models;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

/// <summary>
/// One optimizer step's arithmetic against a hand computation: accumulation averages the micro-batches' losses and
/// gradients, clipping 0 means off, samples run in eval mode, and a trainer disposes only a model it owns.
/// </summary>
public class TrainerStepArithmeticTests
{
    [Fact]
    public void AccumulatedLossAndGradientNormAreThoseOfTheMeanOfTheMicroBatches()
    {
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions() with { BatchSize = 4, GradAccumulation = 3, GradClip = 0 };
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, options);

        // By hand, before the step: the same three micro-batches from the step's batch RNG, the mean loss, its gradient norm.
        var random = Trainer.BatchRandom(options.Seed, 0);
        var losses = Enumerable.Range(0, 3).Select(_ =>
        {
            var b = data.TrainBatch(4, random);
            return Trainer.Loss(trainer.Model.Logits(b.Input), b.Target, b.LossMask);
        }).ToList();
        var mean = (losses[0] + losses[1] + losses[2]) / 3;
        // autograd.grad leaves the parameters' .grad (views into the flat optimizer's buffer) alone.
        var parameters = trainer.Model.parameters().Cast<Tensor>().ToList();
        var grads = autograd.grad(new[] { mean }, parameters, allow_unused: true);
        double norm = Math.Sqrt(grads.Sum(g => g is null ? 0 : g.pow(2).sum().item<float>()));

        var seen = new RecordingObserver();
        trainer.Run(seen, stopAfter: 1);
        Assert.Equal(mean.item<float>(), seen.Steps[0].Loss, 5);
        Assert.Equal(norm, seen.Steps[0].GradNorm, 4);
    }

    [Fact]
    public void ClippingZeroIsOffAndAPositiveBoundClips()
    {
        using var data = TrainingFixtures.CopyTask();
        float[] After(double clip)
        {
            using var t = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions() with { GradClip = clip });
            t.Run(stopAfter: 2);
            return t.Model.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();
        }
        var off = After(0);
        Assert.Equal(After(1e30), off);
        Assert.NotEqual(After(1e-3), off);
    }

    [Fact]
    public void SamplesAreTakenInEvalModeAndTrainingResumesAfter()
    {
        using var data = TrainingFixtures.CopyTask();
        // Heavy dropout: a sample taken in train mode would differ from the eval-mode one.
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(dropout: 0.5), data, TrainingFixtures.TinyOptions());
        trainer.Model.train();
        var samples = trainer.Samples(4);
        Assert.True(trainer.Model.training);
        trainer.Model.eval();
        var reference = data.Samples(trainer.Model, data.DefaultSampling(trainer.Options.Seed), 4, trainer.Options.SampleLength, CPU);
        Assert.Equal(reference, samples);
    }

    [Fact]
    public void EvaluationRunsInEvalModeSoDropoutDoesNotChangeIt()
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(dropout: 0.5), data, TrainingFixtures.TinyOptions());
        trainer.Model.train();
        var first = trainer.Evaluate();
        Assert.True(trainer.Model.training);
        Assert.Equal(first, trainer.Evaluate());
        Assert.Equal(first, trainer.LastEvaluation);
    }

    [Fact]
    public void EvaluateRefusesDataThatDoesNotFit()
    {
        using var data = TrainingFixtures.CopyTask();   // 11 tokens
        using var model = ModelFactory.CreateLanguageModel(TrainingFixtures.TinyDecoder(numTokens: 10));
        Assert.Equal("the data has 11 distinct tokens but the model's num_tokens is 10",
            Assert.Throws<ArgumentException>(() => Evaluator.Evaluate(model, data, 1, 1, CPU)).Message);
    }

    [Fact]
    public void ATrainerDisposesOnlyAModelItOwns()
    {
        using var data = TrainingFixtures.CopyTask();
        var config = TrainingFixtures.TinyDecoder();
        using var model = ModelFactory.CreateLanguageModel(config);
        var borrowed = new Trainer(model, config, data, TrainingFixtures.TinyOptions());
        Assert.Same(model, borrowed.Model);
        borrowed.Dispose();
        using (no_grad()) Assert.Equal(new long[] { 1, 3, 11 }, model.Logits(zeros(1, 3, dtype: ScalarType.Int64)).shape);

        var owner = Trainer.Create(config, data, TrainingFixtures.TinyOptions());
        var weight = owner.Model.parameters().First();
        owner.Dispose();
        Assert.True(weight.IsInvalid);
    }

    [Fact]
    public void ParameterCountIsTheSumOverUniqueParameters()
    {
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions());
        Assert.Equal(trainer.Model.parameters().Sum(p => p.NumberOfElements), trainer.ParameterCount);
        var start = new List<TrainingStart>();
        trainer.Run(new StartRecorder(start), stopAfter: 1);
        Assert.Equal(new TrainingStart(0, 12, trainer.ParameterCount, data.Description, "cpu", null), Assert.Single(start));
    }

    sealed class StartRecorder(List<TrainingStart> starts) : ITrainingObserver
    {
        public void OnStart(TrainingStart start) => starts.Add(start);
    }
}
