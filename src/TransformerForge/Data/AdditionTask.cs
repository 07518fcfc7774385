namespace TransformerForge.Data;

/// <summary>
/// <c>0 4 5 7 + 0 8 6 8 = 5 2 3 9 0</c> (457 + 868 = 1325, sum reversed): two Length-digit numbers, most significant
/// digit first and zero-padded, then the Length + 1 digit sum. Digits are ids 0 .. Symbols - 1 (the base), '+' is id
/// Symbols and '=' (the separator) id Symbols + 1.
/// </summary>
public sealed class AdditionTask : SyntheticTask
{
    public const int DefaultDigits = 4;
    public const int DefaultBase = 10;

    public AdditionTask(SyntheticTaskOptions? options = null) : this(Resolve(options))
    {
    }

    AdditionTask((int Digits, int Base, bool Reverse) size)
        : base(SyntheticTasks.Addition, vocabSize: size.Base + 2, promptLength: 2 * size.Digits + 2, answerLength: size.Digits + 1)
    {
        Digits = size.Digits;
        Base = size.Base;
        ReverseAnswer = size.Reverse;
    }

    static (int Digits, int Base, bool Reverse) Resolve(SyntheticTaskOptions? options)
    {
        const string name = SyntheticTasks.Addition;
        options ??= new SyntheticTaskOptions();
        Unused(name, options, reverseAnswer: false);
        return (Require(name, nameof(options.Length), options.Length ?? DefaultDigits, 1, 2048),
                Require(name, nameof(options.Symbols), options.Symbols ?? DefaultBase, 2, 4096),
                options.ReverseAnswer ?? true);
    }

    public int Digits { get; }
    public int Base { get; }
    /// <summary>True when the sum is written least-significant digit first.</summary>
    public bool ReverseAnswer { get; }
    public long Plus => Base;
    public long Separator => Base + 1;

    protected override void WriteProblem(Span<long> prompt, Random random)
    {
        for (var i = 0; i < Digits; i++)
        {
            prompt[i] = random.Next(Base);
            prompt[Digits + 1 + i] = random.Next(Base);
        }
        prompt[Digits] = Plus;
        prompt[2 * Digits + 1] = Separator;
    }

    protected override void Solve(ReadOnlySpan<long> prompt, Span<long> answer)
    {
        // Schoolbook addition from the least significant digit; answer[k] is the digit of weight Base^k.
        long carry = 0;
        for (var k = 0; k < Digits; k++)
        {
            var s = prompt[Digits - 1 - k] + prompt[2 * Digits - k] + carry;
            answer[k] = s % Base;
            carry = s / Base;
        }
        answer[Digits] = carry;
        if (!ReverseAnswer) answer.Reverse();
    }

    protected override string TokenName(long id) => id == Plus ? "+" : id == Separator ? "=" : id.ToString();
}
