namespace TransformerForge.Data;

/// <summary><c>3 1 4 1 5 | 3 1 4 1 5</c>: repeat the symbols. The easiest task; a sanity check for a model and trainer.</summary>
public sealed class CopyTask(SyntheticTaskOptions? options = null) : SequenceTask(SyntheticTasks.Copy, options)
{
    protected override void Solve(ReadOnlySpan<long> prompt, Span<long> answer) => prompt[..Length].CopyTo(answer);
}
