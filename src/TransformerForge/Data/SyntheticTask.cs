using TorchSharp;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Data;

/// <summary>
/// Shared machinery of the synthetic tasks: sampling, the held-out partition, exact match and rendering. A task
/// only says how to draw a prompt, how to answer it and how to name its tokens.
/// </summary>
public abstract class SyntheticTask : ISyntheticTask
{
    /// <summary>Seed of the held-out stream; the partition below keeps it disjoint from training whatever seed training uses.</summary>
    public const int HeldOutSeed = 20_240_601;
    /// <summary>One problem in this many (by a hash of its prompt) is held out and never sampled for training.</summary>
    public const int HeldOutModulus = 16;
    const int MaxAttempts = 10_000;

    protected SyntheticTask(string name, int vocabSize, int promptLength, int answerLength)
    {
        Name = name;
        VocabSize = vocabSize;
        PromptLength = promptLength;
        AnswerLength = answerLength;
    }

    public string Name { get; }
    public int VocabSize { get; }
    public int SeqLen => PromptLength + AnswerLength;
    public int PromptLength { get; }
    public int AnswerLength { get; }

    /// <summary>Fills <paramref name="prompt"/> (PromptLength tokens, the separator last) with a random problem.</summary>
    protected abstract void WriteProblem(Span<long> prompt, Random random);

    /// <summary>Writes the answer (AnswerLength tokens) to the problem in <paramref name="prompt"/>.</summary>
    protected abstract void Solve(ReadOnlySpan<long> prompt, Span<long> answer);

    /// <summary>Printable name of a token id.</summary>
    protected abstract string TokenName(long id);

    public SyntheticBatch Sample(int batchSize, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        return Generate(batchSize, random, heldOut: false);
    }

    public SyntheticBatch HeldOut(int count) => Generate(count, new Random(HeldOutSeed), heldOut: true);

    /// <summary>Whether a prompt belongs to the held-out problems (FNV-1a hash of its tokens).</summary>
    public static bool IsHeldOut(ReadOnlySpan<long> prompt)
    {
        var h = 14695981039346656037UL;
        foreach (var t in prompt) h = (h ^ (ulong)t) * 1099511628211UL;
        return (h ^ (h >> 29)) % HeldOutModulus == 0;
    }

    SyntheticBatch Generate(int count, Random random, bool heldOut)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var length = SeqLen;
        var tokens = new long[count * length];
        var mask = new bool[count * length];
        for (var b = 0; b < count; b++)
        {
            var row = tokens.AsSpan(b * length, length);
            var prompt = row[..PromptLength];
            for (var attempt = 0; ; attempt++)
            {
                if (attempt == MaxAttempts)
                    throw new InvalidOperationException(
                        $"Task '{Name}' has too few distinct problems to keep {(heldOut ? "a held-out" : "a training")} set apart " +
                        $"from the other; increase Length or Symbols.");
                WriteProblem(prompt, random);
                if (IsHeldOut(prompt) == heldOut) break;
            }
            Solve(prompt, row[PromptLength..]);
            mask.AsSpan(b * length + PromptLength, AnswerLength).Fill(true);
        }
        TorchRuntime.EnsureLoaded();
        return new SyntheticBatch(torch.tensor(tokens, [count, length]), torch.tensor(mask, [count, length]));
    }

    public double ExactMatch(Tensor logits, Tensor tokens, Tensor mask)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(mask);
        if (tokens.dim() != 2 || tokens.shape[1] < 2)
            throw new ArgumentException($"tokens must be [batch, length >= 2]; got [{string.Join(", ", tokens.shape)}].", nameof(tokens));
        if (!mask.shape.SequenceEqual(tokens.shape))
            throw new ArgumentException($"mask [{string.Join(", ", mask.shape)}] must have the shape of tokens [{string.Join(", ", tokens.shape)}].", nameof(mask));
        var (batch, length) = (tokens.shape[0], tokens.shape[1]);
        if (logits.dim() != 3 || logits.shape[0] != batch || (logits.shape[1] != length && logits.shape[1] != length - 1))
            throw new ArgumentException(
                $"logits must be [{batch}, {length - 1} or {length}, vocab] for tokens [{batch}, {length}]; got [{string.Join(", ", logits.shape)}].", nameof(logits));

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var predicted = logits.narrow(1, 0, length - 1).argmax(-1);
        var device = predicted.device;
        var target = tokens.narrow(1, 1, length - 1).to(device);
        var scored = mask.narrow(1, 1, length - 1).to(device).to_type(ScalarType.Bool);
        var wrong = predicted.ne(target).logical_and(scored).sum(1);
        return wrong.eq(0).to_type(ScalarType.Float64).mean().item<double>();
    }

    public double GreedyExactMatch(Func<Tensor, Tensor> nextTokenLogits, Tensor tokens)
    {
        ArgumentNullException.ThrowIfNull(nextTokenLogits);
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.dim() != 2 || tokens.shape[1] != SeqLen)
            throw new ArgumentException($"tokens must be [batch, {SeqLen}] for task '{Name}'; got [{string.Join(", ", tokens.shape)}].", nameof(tokens));

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var batch = tokens.shape[0];
        var sequence = tokens.narrow(1, 0, PromptLength);
        for (var step = 0; step < AnswerLength; step++)
        {
            var logits = nextTokenLogits(sequence);
            if (logits.dim() == 3) logits = logits.select(1, -1);
            if (logits.dim() != 2 || logits.shape[0] != batch)
                throw new ArgumentException(
                    $"nextTokenLogits must return [{batch}, vocab] or [{batch}, length, vocab]; got [{string.Join(", ", logits.shape)}].", nameof(nextTokenLogits));
            var next = logits.argmax(-1, keepdim: true).to(sequence.device).to_type(ScalarType.Int64);
            sequence = torch.cat([sequence, next], 1);
        }
        var answer = sequence.narrow(1, PromptLength, AnswerLength);
        var expected = tokens.narrow(1, PromptLength, AnswerLength);
        return answer.ne(expected).sum(1).eq(0).to_type(ScalarType.Float64).mean().item<double>();
    }

    public string Render(IEnumerable<long> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        return string.Join(' ', tokens.Select(t => t >= 0 && t < VocabSize ? TokenName(t) : $"<{t}>"));
    }

    public string Render(long[] tokens) => Render((IEnumerable<long>)tokens);

    public string Render(Tensor example)
    {
        ArgumentNullException.ThrowIfNull(example);
        if (example.dim() == 2 && example.shape[0] == 1)
        {
            using var row = example[0];
            return Render(row);
        }
        if (example.dim() != 1)
            throw new ArgumentException($"Render takes one example, [length] or [1, length]; got [{string.Join(", ", example.shape)}].", nameof(example));
        using var longs = example.to_type(ScalarType.Int64).cpu();
        return Render((IEnumerable<long>)longs.data<long>().ToArray());
    }

    public override string ToString() => $"{Name} (vocab {VocabSize}, {PromptLength} prompt + {AnswerLength} answer tokens)";

    /// <summary>Checks an option lies in [min, max]; the message names the task and the option.</summary>
    protected static int Require(string task, string option, int value, int min, int max)
    {
        if (value < min || value > max)
            throw new ArgumentOutOfRangeException(option, value, $"Task '{task}': {option} must be between {min} and {max}; got {value}.");
        return value;
    }

    /// <summary>Rejects options a task does not use, so a typo'd configuration is not silently ignored.</summary>
    protected static void Unused(string task, SyntheticTaskOptions options, bool keys = true, bool reverseAnswer = true)
    {
        if (keys && options.Keys is not null)
            throw new ArgumentException($"Task '{task}' does not use the Keys option (only associative-recall does).", nameof(options));
        if (reverseAnswer && options.ReverseAnswer is not null)
            throw new ArgumentException($"Task '{task}' does not use the ReverseAnswer option (only addition does).", nameof(options));
    }
}
