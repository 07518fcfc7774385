using static TorchSharp.torch;

namespace TransformerForge.Data;

/// <summary>
/// An algorithmic task generated in-process. Every example is a fixed-length token sequence: a prompt (the problem,
/// ending with a separator token) followed by the answer. Loss and exact match apply to answer tokens only.
/// Training examples and held-out examples come from disjoint sets of problems (see <see cref="HeldOut"/>).
/// </summary>
public interface ISyntheticTask
{
    string Name { get; }
    /// <summary>Number of distinct tokens (ids are 0 .. VocabSize - 1).</summary>
    int VocabSize { get; }
    /// <summary>Tokens per example, prompt plus answer; a model trained on next-token prediction sees SeqLen - 1 inputs.</summary>
    int SeqLen { get; }
    /// <summary>Tokens before the answer, the separator included.</summary>
    int PromptLength { get; }
    int AnswerLength { get; }

    /// <summary>A training batch drawn from <paramref name="random"/>; never contains a held-out problem.</summary>
    SyntheticBatch Sample(int batchSize, Random random);

    /// <summary>The first <paramref name="count"/> examples of the fixed held-out set (same on every call and machine).</summary>
    SyntheticBatch HeldOut(int count);

    /// <summary>
    /// Fraction of examples whose whole answer is right under teacher forcing: <paramref name="logits"/>[b, t] is the
    /// prediction of <paramref name="tokens"/>[b, t + 1] ([B, SeqLen - 1, V] from a forward pass over tokens[:, :-1],
    /// or [B, SeqLen, V] whose last position is ignored); positions whose target is masked must all be the argmax.
    /// </summary>
    double ExactMatch(Tensor logits, Tensor tokens, Tensor mask);

    /// <summary>
    /// Fraction of examples whose answer greedy decoding reproduces: starting from each prompt,
    /// <paramref name="nextTokenLogits"/> maps the tokens so far [B, T] to logits [B, V] (or [B, T, V], last position used).
    /// </summary>
    double GreedyExactMatch(Func<Tensor, Tensor> nextTokenLogits, Tensor tokens);

    /// <summary>Tokens as readable symbols separated by spaces, e.g. <c>3 1 4 1 5 | 5 1 4 1 3</c>.</summary>
    string Render(IEnumerable<long> tokens);

    /// <summary>Arrays convert implicitly to both IEnumerable and Tensor; this overload settles which one is meant.</summary>
    string Render(long[] tokens) => Render((IEnumerable<long>)tokens);

    /// <summary>A 1-D example (or [1, L]) rendered like <see cref="Render(IEnumerable{long})"/>.</summary>
    string Render(Tensor example);
}
