namespace TransformerForge.Data;

/// <summary><c>3 1 4 1 5 | 5 1 4 1 3</c>: the symbols in reverse order.</summary>
public sealed class ReverseTask(SyntheticTaskOptions? options = null) : SequenceTask(SyntheticTasks.Reverse, options)
{
    protected override void Solve(ReadOnlySpan<long> prompt, Span<long> answer)
    {
        prompt[..Length].CopyTo(answer);
        answer.Reverse();
    }
}
