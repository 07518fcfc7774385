namespace TransformerForge.Search;

/// <summary>Runs a claimed trial and returns how it ended; null when <paramref name="cancellation"/> stopped it first
/// (the worker gives the trial back). <paramref name="progress"/> receives the trial's progress lines.</summary>
public interface ITrialEvaluator
{
    TrialResult? Evaluate(TrialRecord trial, TrialRequest request, Action<string>? progress, CancellationToken cancellation);
}
