using TransformerForge.Generation;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Benchmarks;

/// <summary>
/// Training data for benchmarks: uniformly random token windows, a fresh batch per step drawn from the step's RNG
/// (so every stack in a side-by-side run sees data of the same shape and distribution). Nothing to save or sample.
/// </summary>
public sealed class RandomTokenData(int vocabSize, int inputLength) : ITrainingData
{
    public string Description => $"random tokens (vocabulary {VocabSize}, windows of {InputLength})";
    public int VocabSize { get; } = vocabSize;
    public int InputLength { get; } = inputLength;
    public string? TokenUnit => null;
    public bool HasExactMatch => false;
    public TrainingDataSpec Spec => throw new NotSupportedException("benchmark data is not written into checkpoints");

    public TrainingBatch TrainBatch(int batchSize, Random random)
    {
        var tokens = new long[batchSize * (InputLength + 1)];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = random.Next(VocabSize);
        using var all = tensor(tokens, new long[] { batchSize, InputLength + 1 });
        return new TrainingBatch(all.narrow(1, 0, InputLength).contiguous(), all.narrow(1, 1, InputLength).contiguous());
    }

    public IEnumerable<TrainingBatch> ValidationBatches(int batches, int batchSize)
    {
        var random = new Random(12345);
        for (int i = 0; i < batches; i++) yield return TrainBatch(batchSize, random);
    }

    public IReadOnlyList<string> Samples(ILanguageModel model, SamplingOptions sampling, int count, int length, Device device) => Array.Empty<string>();
    public SamplingOptions DefaultSampling(long seed) => new() { Greedy = true };
    public void SaveFiles(string directory) { }
    public void Dispose() { }
}
