namespace TransformerForge.Data;

/// <summary>
/// <c>a 3 c 7 f 1 c | 7</c>: Length key-value pairs with distinct keys, then a query key and the separator; the answer
/// is the value stored under the query. Keys are ids 0 .. Keys - 1 (shown as letters), values ids Keys ..
/// Keys + Symbols - 1 (shown as digits), the separator id Keys + Symbols.
/// </summary>
public sealed class AssociativeRecallTask : SyntheticTask
{
    public const int DefaultPairs = 6;
    public const int DefaultKeys = 16;
    public const int DefaultSymbols = 10;

    public AssociativeRecallTask(SyntheticTaskOptions? options = null) : this(Resolve(options))
    {
    }

    AssociativeRecallTask((int Pairs, int Keys, int Symbols) size)
        : base(SyntheticTasks.AssociativeRecall, vocabSize: size.Keys + size.Symbols + 1, promptLength: 2 * size.Pairs + 2, answerLength: 1)
    {
        Pairs = size.Pairs;
        Keys = size.Keys;
        Symbols = size.Symbols;
    }

    static (int Pairs, int Keys, int Symbols) Resolve(SyntheticTaskOptions? options)
    {
        const string name = SyntheticTasks.AssociativeRecall;
        options ??= new SyntheticTaskOptions();
        Unused(name, options, keys: false);
        var pairs = Require(name, nameof(options.Length), options.Length ?? DefaultPairs, 1, 2048);
        var keys = options.Keys ?? Math.Max(DefaultKeys, pairs);
        if (keys < pairs)
            throw new ArgumentOutOfRangeException(nameof(options.Keys), keys, $"Task '{name}': Keys ({keys}) must be at least Length ({pairs}) so that the keys of a prompt are distinct.");
        return (pairs, Require(name, nameof(options.Keys), keys, 2, 4096), Require(name, nameof(options.Symbols), options.Symbols ?? DefaultSymbols, 2, 4096));
    }

    public int Pairs { get; }
    public int Keys { get; }
    public int Symbols { get; }
    public long Separator => Keys + Symbols;

    protected override void WriteProblem(Span<long> prompt, Random random)
    {
        // Distinct keys by a partial Fisher-Yates shuffle of 0 .. Keys - 1.
        Span<int> keys = Keys <= 1024 ? stackalloc int[Keys] : new int[Keys];
        for (var i = 0; i < Keys; i++) keys[i] = i;
        for (var i = 0; i < Pairs; i++)
        {
            var j = random.Next(i, Keys);
            (keys[i], keys[j]) = (keys[j], keys[i]);
            prompt[2 * i] = keys[i];
            prompt[2 * i + 1] = Keys + random.Next(Symbols);
        }
        prompt[2 * Pairs] = keys[random.Next(Pairs)];
        prompt[2 * Pairs + 1] = Separator;
    }

    protected override void Solve(ReadOnlySpan<long> prompt, Span<long> answer)
    {
        var query = prompt[2 * Pairs];
        for (var i = 0; i < Pairs; i++)
            if (prompt[2 * i] == query)
            {
                answer[0] = prompt[2 * i + 1];
                return;
            }
        throw new InvalidOperationException("The query key is not among the prompt's keys.");
    }

    protected override string TokenName(long id) =>
        id == Separator ? "|"
        : id < Keys ? (Keys <= 26 ? ((char)('a' + id)).ToString() : $"k{id}")
        : (id - Keys).ToString();
}
