using System.Globalization;

namespace TransformerForge.Search;

/// <summary>An upper bound on a metric that every candidate must meet before it is trained (max parameters, FLOPs,
/// latency): candidates over it are rejected and another is drawn.</summary>
public sealed record Constraint(string Metric, double Max)
{
    public bool Allows(double value) => value <= Max;

    public override string ToString() => $"{Metric} <= {Max.ToString("G6", CultureInfo.InvariantCulture)}";
}

/// <summary>Measures a candidate's constraint metrics (parameters, FLOPs, latency) where it is proposed.</summary>
public interface ICandidateMeter
{
    double Measure(Candidate candidate, string metric);
}
