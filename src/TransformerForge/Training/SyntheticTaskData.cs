using TransformerForge.Data;
using TransformerForge.Generation;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// A synthetic task as training data: the loss counts answer tokens only, and evaluation runs on the task's fixed
/// held-out problems (never seen in training). Exact match under teacher forcing equals greedy exact match for a
/// causal model (if every answer token is the argmax given a correct prefix, greedy decoding writes exactly that
/// answer, and conversely), so it is measured in the same single forward as the loss.
/// </summary>
public sealed class SyntheticTaskData(ISyntheticTask task, TrainingDataSpec? spec = null) : ITrainingData
{
    public ISyntheticTask Task { get; } = task ?? throw new ArgumentNullException(nameof(task));
    public string Description => $"task {Task}";
    public int VocabSize => Task.VocabSize;
    public int InputLength => Task.SeqLen - 1;
    public string? TokenUnit => null;
    public bool HasExactMatch => true;
    public TrainingDataSpec Spec { get; } = spec ?? TrainingDataSpec.ForTask(task.Name);

    public TrainingBatch TrainBatch(int batchSize, Random random) => FromExamples(Task.Sample(batchSize, random));

    public IEnumerable<TrainingBatch> ValidationBatches(int batches, int batchSize)
    {
        var all = Task.HeldOut(batches * batchSize);
        for (int i = 0; i < batches; i++)
            yield return FromExamples(new SyntheticBatch(all.Tokens.narrow(0, i * batchSize, batchSize), all.LossMask.narrow(0, i * batchSize, batchSize)));
    }

    static TrainingBatch FromExamples(SyntheticBatch examples)
    {
        var (input, target, mask) = examples.ForNextToken();
        return new TrainingBatch(input, target, mask);
    }

    public IReadOnlyList<string> Samples(ILanguageModel model, SamplingOptions sampling, int count, int length, Device device)
    {
        if (count == 0) return Array.Empty<string>();
        using var scope = NewDisposeScope();
        var examples = Task.HeldOut(count);
        var prompts = examples.Tokens.narrow(1, 0, Task.PromptLength);
        var answers = Autoregressive.Generate(model, prompts.to(device), Task.AnswerLength, sampling).cpu();
        var lines = new List<string>();
        for (int b = 0; b < count; b++)
        {
            var got = answers[b].data<long>().ToArray();
            var expected = examples.Tokens[b].narrow(0, Task.PromptLength, Task.AnswerLength).data<long>().ToArray();
            var verdict = got.SequenceEqual(expected) ? "✓" : $"✗ (expected {Task.Render(expected)})";
            lines.Add($"{Task.Render(prompts[b])} {Task.Render(got)}  {verdict}");
        }
        return lines;
    }

    /// <summary>Greedy: the answer of a task is deterministic, and greedy is what exact match measures.</summary>
    public SamplingOptions DefaultSampling(long seed) => new() { Greedy = true, Seed = seed };

    public void SaveFiles(string directory) { }

    public void Dispose() { }
}
