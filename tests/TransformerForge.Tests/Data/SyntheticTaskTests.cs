using TorchSharp;
using TransformerForge.Data;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Data;

public class SyntheticTaskTests
{
    public static TheoryData<string> Names => [.. SyntheticTasks.Names];

    static long[][] Rows(Tensor t) =>
        Enumerable.Range(0, (int)t.shape[0]).Select(i =>
        {
            using var row = t[i];
            return row.data<long>().ToArray();
        }).ToArray();

    static bool[][] MaskRows(Tensor t) =>
        Enumerable.Range(0, (int)t.shape[0]).Select(i =>
        {
            using var row = t[i];
            return row.data<bool>().ToArray();
        }).ToArray();

    [Theory]
    [MemberData(nameof(Names))]
    public void ExamplesAreWellFormed(string name)
    {
        TorchRuntime.EnsureLoaded();
        var task = SyntheticTasks.Create(name);
        Assert.Equal(name, task.Name);
        Assert.Equal(task.PromptLength + task.AnswerLength, task.SeqLen);
        using var batch = task.Sample(64, new Random(1));
        Assert.Equal([64, task.SeqLen], batch.Tokens.shape);
        Assert.Equal(ScalarType.Int64, batch.Tokens.dtype);
        Assert.Equal([64, task.SeqLen], batch.LossMask.shape);
        Assert.Equal(ScalarType.Bool, batch.LossMask.dtype);

        var masks = MaskRows(batch.LossMask);
        foreach (var (row, mask) in Rows(batch.Tokens).Zip(masks))
        {
            Assert.All(row, t => Assert.InRange(t, 0, task.VocabSize - 1));
            // Loss only on the answer, which follows the prompt.
            Assert.Equal(Enumerable.Range(0, task.SeqLen).Select(i => i >= task.PromptLength), mask);
            var prompt = row[..task.PromptLength];
            var answer = row[task.PromptLength..];
            Assert.Equal(ExpectedAnswer(task, prompt), answer);
        }

        var (input, target, targetMask) = batch.ForNextToken();
        using (input)
        using (target)
        using (targetMask)
        {
            Assert.Equal([64, task.SeqLen - 1], input.shape);
            Assert.Equal(64L * task.AnswerLength, targetMask.sum().item<long>());
        }
    }

    /// <summary>Solves each task independently of the library, on the raw token layout the task documents.</summary>
    static long[] ExpectedAnswer(ISyntheticTask task, long[] prompt)
    {
        switch (task)
        {
            case SequenceTask s:
                Assert.Equal(s.Separator, prompt[^1]);
                var items = prompt[..^1];
                Assert.All(items, t => Assert.InRange(t, 0, s.Symbols - 1));
                return task.Name switch
                {
                    "copy" => items,
                    "reverse" => items.Reverse().ToArray(),
                    "sort" => items.Order().ToArray(),
                    _ => throw new InvalidOperationException(task.Name),
                };
            case AssociativeRecallTask r:
                Assert.Equal(r.Separator, prompt[^1]);
                var keys = Enumerable.Range(0, r.Pairs).Select(i => prompt[2 * i]).ToArray();
                Assert.Equal(keys.Length, keys.Distinct().Count());
                Assert.All(keys, k => Assert.InRange(k, 0, r.Keys - 1));
                var query = prompt[2 * r.Pairs];
                return [prompt[2 * Array.IndexOf(keys, query) + 1]];
            case AdditionTask a:
                Assert.Equal(10, a.Base);
                Assert.Equal(a.Plus, prompt[a.Digits]);
                Assert.Equal(a.Separator, prompt[^1]);
                long Number(IEnumerable<long> digits) => digits.Aggregate(0L, (n, d) => n * 10 + d);
                var sum = Number(prompt[..a.Digits]) + Number(prompt[(a.Digits + 1)..^1]);
                var text = sum.ToString().PadLeft(a.Digits + 1, '0').Select(c => (long)(c - '0')).ToArray();
                return a.ReverseAnswer ? text.Reverse().ToArray() : text;
            default:
                throw new InvalidOperationException(task.Name);
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void SamplingIsDeterministicForASeed(string name)
    {
        TorchRuntime.EnsureLoaded();
        var task = SyntheticTasks.Create(name);
        using var a = task.Sample(16, new Random(9));
        using var b = task.Sample(16, new Random(9));
        using var c = task.Sample(16, new Random(10));
        Assert.Equal(Rows(a.Tokens), Rows(b.Tokens));
        Assert.NotEqual(Rows(a.Tokens), Rows(c.Tokens));
        using var h1 = task.HeldOut(32);
        using var h2 = task.HeldOut(32);
        Assert.Equal(Rows(h1.Tokens), Rows(h2.Tokens));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void HeldOutProblemsNeverAppearInTraining(string name)
    {
        TorchRuntime.EnsureLoaded();
        var task = SyntheticTasks.Create(name);
        using var heldOut = task.HeldOut(200);
        var heldPrompts = Rows(heldOut.Tokens).Select(r => string.Join(',', r[..task.PromptLength])).ToHashSet();
        Assert.True(heldPrompts.Count > 150, "held-out problems should be mostly distinct");
        using var train = task.Sample(4000, new Random(SyntheticTask.HeldOutSeed));   // even with the held-out seed
        foreach (var row in Rows(train.Tokens))
        {
            Assert.False(SyntheticTask.IsHeldOut(row.AsSpan(0, task.PromptLength)));
            Assert.DoesNotContain(string.Join(',', row[..task.PromptLength]), heldPrompts);
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void ExactMatchIsOneForPerfectLogitsAndDropsWithOneWrongAnswerToken(string name)
    {
        TorchRuntime.EnsureLoaded();
        var task = SyntheticTasks.Create(name);
        using var scope = torch.NewDisposeScope();
        const int batch = 8;
        using var data = task.HeldOut(batch);
        var length = task.SeqLen;
        var targets = data.Tokens.narrow(1, 1, length - 1);
        var perfect = torch.nn.functional.one_hot(targets, task.VocabSize).to_type(ScalarType.Float32);   // [B, L-1, V]
        Assert.Equal(1.0, task.ExactMatch(perfect, data.Tokens, data.LossMask));

        // [B, L, V] logits (a forward pass over all tokens) are accepted too; the last position is ignored.
        var padded = torch.cat([perfect, torch.zeros(batch, 1, task.VocabSize)], 1);
        Assert.Equal(1.0, task.ExactMatch(padded, data.Tokens, data.LossMask));

        // One wrong answer token in example 3: the last answer token is predicted by position L - 2.
        var wrongAnswer = perfect.clone();
        var truth = data.Tokens[3, length - 1].item<long>();
        wrongAnswer[3, length - 2] = torch.nn.functional.one_hot(torch.tensor((truth + 1) % task.VocabSize), task.VocabSize).to_type(ScalarType.Float32);
        Assert.Equal((batch - 1) / (double)batch, task.ExactMatch(wrongAnswer, data.Tokens, data.LossMask));

        // A wrong prediction inside the prompt is not scored.
        var wrongPrompt = perfect.clone();
        wrongPrompt[5, 0] = torch.zeros(task.VocabSize);
        wrongPrompt[5, 0, (data.Tokens[5, 1].item<long>() + 1) % task.VocabSize] = 1f;
        Assert.Equal(1.0, task.ExactMatch(wrongPrompt, data.Tokens, data.LossMask));

        Assert.Throws<ArgumentException>(() => task.ExactMatch(perfect.narrow(1, 0, length - 2), data.Tokens, data.LossMask));
        Assert.Throws<ArgumentException>(() => task.ExactMatch(perfect, data.Tokens, data.LossMask.narrow(1, 0, 2)));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void GreedyExactMatchWithAnOracle(string name)
    {
        TorchRuntime.EnsureLoaded();
        var task = SyntheticTasks.Create(name);
        using var scope = torch.NewDisposeScope();
        using var data = task.HeldOut(6);

        // The oracle looks up the true next token for the prefix length; the liar breaks example 2's last answer token.
        Tensor Oracle(Tensor prefix, bool lie)
        {
            var t = prefix.shape[1];
            Assert.InRange(t, task.PromptLength, task.SeqLen - 1);
            var next = data.Tokens.select(1, t).clone();
            if (lie && t == task.SeqLen - 1) next[2] = (next[2].item<long>() + 1) % task.VocabSize;
            return torch.nn.functional.one_hot(next, task.VocabSize).to_type(ScalarType.Float32);
        }

        Assert.Equal(1.0, task.GreedyExactMatch(p => Oracle(p, false), data.Tokens));
        Assert.Equal(5 / 6.0, task.GreedyExactMatch(p => Oracle(p, true), data.Tokens), 10);
        // [B, T, V] results are accepted (last position used).
        Assert.Equal(1.0, task.GreedyExactMatch(p => Oracle(p, false).unsqueeze(1).expand(6, p.shape[1], task.VocabSize), data.Tokens));
    }

    [Fact]
    public void RendersExamplesReadably()
    {
        TorchRuntime.EnsureLoaded();
        Assert.Equal("3 1 4 1 5 | 5 1 4 1 3", SyntheticTasks.Create("reverse", new(Length: 5)).Render([3, 1, 4, 1, 5, 10, 5, 1, 4, 1, 3]));
        Assert.Equal("0 4 5 7 + 0 8 6 8 = 5 2 3 1 0", SyntheticTasks.Create("addition").Render([0, 4, 5, 7, 10, 0, 8, 6, 8, 11, 5, 2, 3, 1, 0]));
        var recall = SyntheticTasks.Create("associative-recall", new(Length: 2));
        Assert.Equal("a 3 c 7 c | 7", recall.Render([0, 16 + 3, 2, 16 + 7, 2, 26, 16 + 7]));

        var copy = SyntheticTasks.Create("copy");
        using var batch = copy.Sample(1, new Random(4));
        var text = copy.Render(batch.Tokens);
        Assert.Equal(copy.SeqLen, text.Split(' ').Length);
        Assert.Equal(text, copy.Render(Rows(batch.Tokens)[0]));
        Assert.Matches(@"^(\d )+\| (\d ?)+$", text);
    }

    [Fact]
    public void DefaultSizesAreSmall()
    {
        var copy = SyntheticTasks.Create("copy");
        Assert.Equal((11, 21, 11, 10), (copy.VocabSize, copy.SeqLen, copy.PromptLength, copy.AnswerLength));
        var addition = SyntheticTasks.Create("ADDITION");
        Assert.Equal((12, 15, 5), (addition.VocabSize, addition.SeqLen, addition.AnswerLength));
        var recall = SyntheticTasks.Create("associative-recall");
        Assert.Equal((27, 15, 1), (recall.VocabSize, recall.SeqLen, recall.AnswerLength));
        var sort = SyntheticTasks.Create("sort", new(Length: 20, Symbols: 5));
        Assert.Equal((6, 41), (sort.VocabSize, sort.SeqLen));
    }

    [Fact]
    public void NonReversedAdditionWritesTheSumMostSignificantDigitFirst()
    {
        TorchRuntime.EnsureLoaded();
        var task = (AdditionTask)SyntheticTasks.Create("addition", new(Length: 6, ReverseAnswer: false));
        using var batch = task.Sample(32, new Random(2));
        foreach (var row in Rows(batch.Tokens))
            Assert.Equal(ExpectedAnswer(task, row[..task.PromptLength]), row[task.PromptLength..]);
    }

    [Fact]
    public void RejectsUnknownNamesAndBadOptions()
    {
        var e = Assert.Throws<ArgumentException>(() => SyntheticTasks.Create("parity"));
        Assert.Contains("parity", e.Message);
        Assert.Contains("copy, reverse, sort, associative-recall, addition", e.Message);

        Assert.Contains("Length", Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticTasks.Create("copy", new(Length: 0))).Message);
        Assert.Contains("Symbols", Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticTasks.Create("sort", new(Symbols: 1))).Message);
        Assert.Contains("Keys", Assert.Throws<ArgumentException>(() => SyntheticTasks.Create("copy", new(Keys: 4))).Message);
        Assert.Contains("ReverseAnswer", Assert.Throws<ArgumentException>(() => SyntheticTasks.Create("reverse", new(ReverseAnswer: true))).Message);
        Assert.Contains("Keys", Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticTasks.Create("associative-recall", new(Length: 8, Keys: 4))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticTasks.Create("copy").Sample(0, new Random(1)));
        // Too few distinct problems to keep a held-out set apart.
        Assert.Throws<InvalidOperationException>(() => SyntheticTasks.Create("copy", new(Length: 1, Symbols: 2)).HeldOut(4));
    }
}
