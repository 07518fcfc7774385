namespace TransformerForge.Data;

/// <summary>
/// Tasks whose prompt is a list of symbols and whose answer is a rearrangement of it:
/// <c>x1 .. xn |</c> then n answer symbols. Symbols are ids 0 .. Symbols - 1 and the separator is id Symbols.
/// </summary>
public abstract class SequenceTask : SyntheticTask
{
    public const int DefaultLength = 10;
    public const int DefaultSymbols = 10;

    protected SequenceTask(string name, SyntheticTaskOptions? options) : this(name, Resolve(name, options))
    {
    }

    SequenceTask(string name, (int Length, int Symbols) size)
        : base(name, vocabSize: size.Symbols + 1, promptLength: size.Length + 1, answerLength: size.Length)
    {
        Length = size.Length;
        Symbols = size.Symbols;
    }

    static (int Length, int Symbols) Resolve(string name, SyntheticTaskOptions? options)
    {
        options ??= new SyntheticTaskOptions();
        Unused(name, options);
        return (Require(name, nameof(options.Length), options.Length ?? DefaultLength, 1, 4096),
                Require(name, nameof(options.Symbols), options.Symbols ?? DefaultSymbols, 2, 4096));
    }

    public int Length { get; }
    public int Symbols { get; }
    public long Separator => Symbols;

    protected override void WriteProblem(Span<long> prompt, Random random)
    {
        for (var i = 0; i < Length; i++) prompt[i] = random.Next(Symbols);
        prompt[Length] = Separator;
    }

    protected override string TokenName(long id) => id == Separator ? "|" : id.ToString();
}
