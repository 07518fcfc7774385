using TorchSharp;
using TransformerForge.Generation;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// Greedy decoding (temperature 0) or sampling at a temperature from a private, seeded generator (so samples never
/// advance the global RNG a run's dropout uses, and a resumed run stays identical). Recomputes the whole window each
/// token, cropped to the model's <see cref="ILanguageModel.MaxSeqLen"/>: simple, and cheap at sample lengths.
/// </summary>
public sealed class SimpleTokenGenerator(double temperature = 0, ulong seed = 0) : ITokenGenerator
{
    public Tensor Generate(ILanguageModel model, Tensor prompt, int count)
    {
        if (prompt.dim() != 2 || prompt.shape[1] == 0)
            throw new ArgumentException($"prompt must be [batch, length >= 1], got [{string.Join(", ", prompt.shape)}]");
        using var gen = temperature > 0 ? new Generator(seed) : null;
        using var _ = no_grad();
        var seq = prompt.to_type(ScalarType.Int64);
        using (var scope = NewDisposeScope())
        {
            for (int i = 0; i < count; i++)
            {
                var window = seq.shape[1] > model.MaxSeqLen ? seq.narrow(1, seq.shape[1] - model.MaxSeqLen, model.MaxSeqLen) : seq;
                var logits = model.Logits(window).select(1, -1);
                Tensor next;
                if (gen is null) next = logits.argmax(-1, keepdim: true);
                else
                {
                    var probs = nn.functional.softmax(logits.to_type(ScalarType.Float32) / temperature, -1).cpu();
                    next = multinomial(probs, 1, generator: gen).to(seq.device);
                }
                seq = cat(new[] { seq, next }, 1);
            }
            return seq.narrow(1, prompt.shape[1], count).MoveToOuterDisposeScope();
        }
    }
}
