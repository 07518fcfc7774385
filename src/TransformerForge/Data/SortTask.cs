namespace TransformerForge.Data;

/// <summary><c>3 1 4 1 5 | 1 1 3 4 5</c>: the symbols in ascending order.</summary>
public sealed class SortTask(SyntheticTaskOptions? options = null) : SequenceTask(SyntheticTasks.Sort, options)
{
    protected override void Solve(ReadOnlySpan<long> prompt, Span<long> answer)
    {
        prompt[..Length].CopyTo(answer);
        answer.Sort();
    }
}
