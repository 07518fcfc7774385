using TransformerForge.Data;
using TransformerForge.Generation;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// Random windows of a tokenized corpus: inputs are <see cref="InputLength"/> tokens and every position predicts the
/// next token. Validation uses the corpus's held-back tail, at the same fixed offsets every evaluation.
/// </summary>
public sealed class TextWindowData : ITrainingData
{
    /// <summary>Seed of the fixed validation windows and sample prompts (independent of the run's seed).</summary>
    public const int ValidationSeed = 7_919;

    readonly TextDataset _dataset;

    public TextWindowData(TextDataset dataset, int seqLen, TrainingDataSpec? spec = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (seqLen < 1) throw new ArgumentException($"seq_len must be a positive integer, got {seqLen}");
        long shortest = Math.Min(dataset.TrainTokens, dataset.ValidationTokens);
        if (seqLen + 1L > shortest)
            throw new ArgumentException($"seq_len {seqLen} is too long for '{dataset.SourcePath}': its " +
                $"{(dataset.TrainTokens <= dataset.ValidationTokens ? "training" : "validation")} split has only {shortest} tokens " +
                $"and a window needs seq_len + 1; use a shorter --seq-len or a larger corpus");
        _dataset = dataset;
        InputLength = seqLen;
        Spec = spec ?? TrainingDataSpec.ForText(dataset.SourcePath, dataset.Tokenizer.Kind, seqLen, dataset.ContentSha256);
    }

    /// <summary>Opens (tokenizing if needed) the corpus at <paramref name="path"/>.</summary>
    public static TextWindowData Open(string path, ITokenizer tokenizer, int seqLen, TrainingDataSpec? spec = null)
    {
        var dataset = TextDataset.Open(path, tokenizer);
        try
        {
            return new TextWindowData(dataset, seqLen, spec);
        }
        catch
        {
            dataset.Dispose();
            throw;
        }
    }

    public TextDataset Dataset => _dataset;
    public ITokenizer Tokenizer => _dataset.Tokenizer;
    public string Description => $"text '{_dataset.SourcePath}' ({Tokenizer.Kind} tokens: {_dataset.TrainTokens:N0} train, {_dataset.ValidationTokens:N0} validation)";
    public int VocabSize => Tokenizer.VocabSize;
    public int InputLength { get; }
    public string? TokenUnit => Tokenizer.Kind switch { "bytes" => "byte", "chars" => "char", _ => null };
    public bool HasExactMatch => false;
    public TrainingDataSpec Spec { get; }

    public TrainingBatch TrainBatch(int batchSize, Random random) =>
        Split(_dataset.SampleBatch(DataSplit.Train, batchSize, InputLength, random));

    public IEnumerable<TrainingBatch> ValidationBatches(int batches, int batchSize)
    {
        var random = new Random(ValidationSeed);
        for (int i = 0; i < batches; i++) yield return Split(_dataset.SampleBatch(DataSplit.Validation, batchSize, InputLength, random));
    }

    TrainingBatch Split(Tensor windows)
    {
        var n = windows.shape[1] - 1;
        return new TrainingBatch(windows.narrow(1, 0, n), windows.narrow(1, 1, n));
    }

    public IReadOnlyList<string> Samples(ILanguageModel model, SamplingOptions sampling, int count, int length, Device device)
    {
        if (count == 0) return Array.Empty<string>();
        using var scope = NewDisposeScope();
        int promptLength = Math.Min(32, InputLength);
        var prompts = _dataset.SampleBatch(DataSplit.Validation, count, promptLength - 1, new Random(ValidationSeed + 1)).to(device);
        var continuation = Autoregressive.Generate(model, prompts, length, sampling).cpu();
        var lines = new List<string>();
        for (int b = 0; b < count; b++)
        {
            var prompt = Tokenizer.Decode(prompts[b].cpu().data<long>().ToArray().Select(t => (int)t));
            var generated = Tokenizer.Decode(continuation[b].data<long>().ToArray().Select(t => (int)t));
            lines.Add($"{OneLine(prompt)} ⟶ {OneLine(generated)}");
        }
        return lines;
    }

    /// <summary>Temperature 0.8 from a private seeded generator: greedy decoding of a weak model only repeats itself.</summary>
    public SamplingOptions DefaultSampling(long seed) => new() { Temperature = 0.8, Seed = seed };

    static string OneLine(string s) => s.Replace("\r", "").Replace("\n", "⏎").Replace("\t", "⇥");

    public void SaveFiles(string directory) => Tokenizer.Save(directory);

    public void Dispose() => _dataset.Dispose();
}
