using TransformerForge.Generation;
using TransformerForge.Models;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

/// <summary>
/// <see cref="Evaluator"/> against hand-made validation batches whose answers are the model's own argmax except where
/// chosen: exact match counts a row right only when every masked-in position is, the loss is the mean over the
/// masked-in positions of all batches, and the fit checks' bounds are inclusive.
/// </summary>
public class EvaluatorExactnessTests
{
    [Fact]
    public void ExactMatchLossAndExamplesOverMaskedPositionsOfEveryBatch()
    {
        using var inner = TrainingFixtures.CopyTask();
        random.manual_seed(11);
        using var model = ModelFactory.CreateLanguageModel(TrainingFixtures.TinyDecoder());
        var input = randint(0, 11, new long[] { 4, 6 }, dtype: ScalarType.Int64);
        Tensor argmax;
        using (no_grad()) argmax = model.Logits(input).argmax(-1);
        var mask = ones(4, 6, dtype: ScalarType.Bool);
        mask.select(1, 0).fill_(false);                   // position 0 never counts
        var target = argmax.clone();
        target[1, 0] = (argmax[1, 0] + 1) % 11;             // row 1: wrong only where masked out, so still exact
        target[2, 3] = (argmax[2, 3] + 1) % 11;             // row 2: wrong where it counts
        // Two batches: rows 0-1 and rows 2-3 (3 of 4 rows exact).
        var batches = new[]
        {
            new TrainingBatch(input.narrow(0, 0, 2), target.narrow(0, 0, 2), mask.narrow(0, 0, 2)),
            new TrainingBatch(input.narrow(0, 2, 2), target.narrow(0, 2, 2), mask.narrow(0, 2, 2)),
        };
        using var data = new HandMadeValidation(inner, batches, unit: "char");
        model.train();

        var m = Evaluator.Evaluate(model, data, batches: 2, batchSize: 2, CPU, step: 9);

        Assert.True(model.training);
        Assert.Equal(9, m.Step);
        Assert.Equal(4, m.Examples);
        Assert.Equal(0.75, m.ExactMatch);
        double expected = ReferenceLoss(model, input, target, mask);
        Assert.Equal(expected, m.Loss, 5);
        Assert.Equal(Math.Exp(m.Loss), m.Perplexity, 12);
        Assert.Equal(m.Loss / Math.Log(2), m.BitsPerUnit!.Value, 12);
        Assert.Equal("char", m.Unit);
    }

    [Fact]
    public void WithoutAMaskEveryPositionCountsAndEvalModeIsKept()
    {
        using var inner = TrainingFixtures.CopyTask();
        random.manual_seed(12);
        using var model = ModelFactory.CreateLanguageModel(TrainingFixtures.TinyDecoder());
        var input = randint(0, 11, new long[] { 2, 5 }, dtype: ScalarType.Int64);
        Tensor argmax;
        using (no_grad()) argmax = model.Logits(input).argmax(-1);
        var target = argmax.clone();
        target[0, 0] = (argmax[0, 0] + 1) % 11;             // row 0 wrong at its first position: no mask saves it
        using var data = new HandMadeValidation(inner, new[] { new TrainingBatch(input, target) }, unit: null);
        model.eval();

        var m = Evaluator.Evaluate(model, data, batches: 1, batchSize: 2, CPU);

        Assert.False(model.training);
        Assert.Equal(0, m.Step);
        Assert.Equal(0.5, m.ExactMatch);
        Assert.Equal(ReferenceLoss(model, input, target, ones(2, 5, dtype: ScalarType.Bool)), m.Loss, 5);
        Assert.Null(m.BitsPerUnit);
        Assert.Null(m.Unit);
    }

    [Fact]
    public void DataWithoutExactMatchReportsNone()
    {
        using var inner = TrainingFixtures.CopyTask();
        using var model = ModelFactory.CreateLanguageModel(TrainingFixtures.TinyDecoder());
        var input = zeros(1, 4, dtype: ScalarType.Int64);
        using var data = new HandMadeValidation(inner, new[] { new TrainingBatch(input, input) }, unit: "byte", exactMatch: false);
        Assert.Null(Evaluator.Evaluate(model, data, 1, 1, CPU).ExactMatch);
    }

    [Theory]
    [InlineData(11, 10, null)]
    [InlineData(10, 10, "the data has 11 distinct tokens but the model's num_tokens is 10")]
    [InlineData(11, 9, "seq_len 10 is longer than the model's max_seq_len 9")]
    public void FitsWhenVocabularyAndWindowAreAtMostTheModels(int numTokens, int maxSeqLen, string? refusal)
    {
        using var data = TrainingFixtures.CopyTask();   // 11 tokens, inputs of 10
        var model = new Shape(numTokens, maxSeqLen);
        if (refusal is null) Evaluator.CheckFits(model, data);
        else Assert.Equal(refusal, Assert.Throws<ArgumentException>(() => Evaluator.CheckFits(model, data)).Message);
    }

    /// <summary>Mean of −log p(target) over the masked-in positions, position by position in float64.</summary>
    static double ReferenceLoss(LanguageModel model, Tensor input, Tensor target, Tensor mask)
    {
        using var _ = no_grad();
        bool was = model.training;
        model.eval();
        var logp = model.Logits(input).to_type(ScalarType.Float64).log_softmax(-1);
        model.train(was);
        double sum = 0;
        int n = 0;
        for (long b = 0; b < input.shape[0]; b++)
            for (long t = 0; t < input.shape[1]; t++)
                if (mask[b, t].item<bool>())
                {
                    sum -= logp[b, t, target[b, t].item<long>()].item<double>();
                    n++;
                }
        return sum / n;
    }

    sealed record Shape(int NumTokens, int MaxSeqLen) : ILanguageModel
    {
        public Tensor Logits(Tensor tokens, Tensor? mask = null, IDecodingState? state = null) => throw new NotSupportedException();
        public IDecodingState? CreateDecodingState() => null;
    }

    /// <summary>The copy task, except for its validation batches (and unit and exact match).</summary>
    sealed class HandMadeValidation(ITrainingData inner, TrainingBatch[] batches, string? unit, bool exactMatch = true) : ITrainingData
    {
        public string Description => inner.Description;
        public int VocabSize => inner.VocabSize;
        public int InputLength => (int)batches[0].Input.shape[1];
        public string? TokenUnit => unit;
        public bool HasExactMatch => exactMatch;
        public TrainingDataSpec Spec => inner.Spec;
        public TrainingBatch TrainBatch(int batchSize, Random random) => inner.TrainBatch(batchSize, random);
        public IEnumerable<TrainingBatch> ValidationBatches(int count, int batchSize) => batches.Take(count);
        public IReadOnlyList<string> Samples(ILanguageModel model, SamplingOptions sampling, int count, int length, Device device) =>
            inner.Samples(model, sampling, count, length, device);
        public SamplingOptions DefaultSampling(long seed) => inner.DefaultSampling(seed);
        public void SaveFiles(string directory) => inner.SaveFiles(directory);
        public void Dispose() { }
    }
}
