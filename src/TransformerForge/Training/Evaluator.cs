using TorchSharp;
using TransformerForge.Generation;
using TransformerForge.Models;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>Validation metrics of a language model on a data source's fixed validation (or held-out) batches.</summary>
public static class Evaluator
{
    /// <summary>
    /// Mean next-token loss over the counted positions, perplexity, bits per byte/char where one token is one of
    /// those, and (tasks) exact match. Puts <paramref name="model"/> in eval mode and back in train mode after.
    /// </summary>
    public static EvaluationMetrics Evaluate(LanguageModel model, ITrainingData data, int batches, int batchSize, Device device, int step = 0)
    {
        CheckFits(model, data);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var outer = NewDisposeScope();   // the batches themselves are made before each inner scope opens
            using var _ = no_grad();
            double lossSum = 0;
            long tokens = 0, exact = 0, examples = 0;
            foreach (var cpuBatch in data.ValidationBatches(batches, batchSize))
            {
                using var scope = NewDisposeScope();
                var batch = cpuBatch.To(device);
                var logits = model.Logits(batch.Input);
                lossSum += Trainer.Loss(logits, batch.Target, batch.LossMask, nn.Reduction.Sum).to_type(ScalarType.Float64).item<double>();
                tokens += batch.CountedTokens;
                examples += batch.Input.shape[0];
                if (data.HasExactMatch)
                {
                    var wrong = logits.argmax(-1).ne(batch.Target);
                    if (batch.LossMask is not null) wrong = wrong.logical_and(batch.LossMask);
                    exact += wrong.any(1).logical_not().sum().item<long>();
                }
            }
            double loss = lossSum / Math.Max(tokens, 1);
            var unit = data.TokenUnit;
            return new EvaluationMetrics(step, loss, Math.Exp(loss), unit is null ? null : loss / Math.Log(2), unit,
                data.HasExactMatch ? (double)exact / examples : null, (int)examples);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Throws when the data's tokens or windows do not fit the model.</summary>
    public static void CheckFits(ILanguageModel model, ITrainingData data)
    {
        if (data.VocabSize > model.NumTokens)
            throw new ArgumentException($"the data has {data.VocabSize} distinct tokens but the model's num_tokens is {model.NumTokens}");
        if (data.InputLength > model.MaxSeqLen)
            throw new ArgumentException($"seq_len {data.InputLength} is longer than the model's max_seq_len {model.MaxSeqLen}");
    }
}
