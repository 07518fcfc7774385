using TransformerForge.Generation;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// Where a run's examples come from: windows of a text corpus (next-token loss everywhere) or a synthetic task
/// (loss on the answer only). Batches are CPU tensors; the trainer moves them to its device.
/// </summary>
public interface ITrainingData : IDisposable
{
    /// <summary>One line for logs, e.g. <c>text 'corpus.txt' (bytes, 1.2M tokens)</c>.</summary>
    string Description { get; }
    /// <summary>Every token id is below this.</summary>
    int VocabSize { get; }
    /// <summary>Tokens per model input.</summary>
    int InputLength { get; }
    /// <summary><c>byte</c> or <c>char</c> when one token is one byte or character (loss / ln 2 is then bits per unit); else null.</summary>
    string? TokenUnit { get; }
    /// <summary>Whether held-out exact match (every answer token right) is measured.</summary>
    bool HasExactMatch { get; }
    /// <summary>How to open this data again (written into checkpoints).</summary>
    TrainingDataSpec Spec { get; }

    /// <summary>A training batch drawn from <paramref name="random"/> (same state, same batch).</summary>
    TrainingBatch TrainBatch(int batchSize, Random random);

    /// <summary>The fixed validation/held-out batches: the same examples on every call.</summary>
    IEnumerable<TrainingBatch> ValidationBatches(int batches, int batchSize);

    /// <summary>
    /// Readable lines showing what the model does with held-out prompts now. <paramref name="sampling"/> should carry
    /// a seed: without one, sampling would advance the global torch RNG and a resumed run would no longer match.
    /// </summary>
    IReadOnlyList<string> Samples(ILanguageModel model, SamplingOptions sampling, int count, int length, Device device);

    /// <summary>How a run samples when not told otherwise (greedy for tasks, temperature sampling for text), seeded.</summary>
    SamplingOptions DefaultSampling(long seed);

    /// <summary>Writes what a saved model needs to read this data again (e.g. <c>tokenizer.json</c>) into <paramref name="directory"/>.</summary>
    void SaveFiles(string directory);
}
