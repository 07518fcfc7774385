using System.Text.Json.Nodes;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Runtime;

namespace TransformerForge.Search;

/// <summary>
/// Measures constraint metrics where candidates are proposed: FLOPs analytically, parameters and latency on the built
/// model (CPU). A model whose analytic size is beyond <see cref="MaxBuildParameters"/> is not built (building it could
/// exhaust this process's memory): its estimated size (FLOPs/2) stands for its parameter count, which is far over any
/// limit a search on such a budget would set.
/// </summary>
public sealed class ModelMeter(int contextLength, int latencyRepeats = 5, double maxBuildParameters = 300e6) : ICandidateMeter
{
    public double MaxBuildParameters => maxBuildParameters;

    public double Measure(Candidate candidate, string metric)
    {
        var spec = candidate.Spec;
        double flops = ModelCost.FlopsPerToken(spec, contextLength);
        switch (metric)
        {
            case Metrics.FlopsPerToken:
                return flops;
            case Metrics.Params or Metrics.NonEmbeddingParams or Metrics.LatencyMs:
                if (flops / 2 > maxBuildParameters)
                {
                    if (metric == Metrics.LatencyMs) throw new InvalidCandidateException($"about {flops / 2:G3} parameters: too large to build for timing");
                    return flops / 2;
                }
                TorchRuntime.EnsureLoaded();
                using (var scope = torch.NewDisposeScope())
                using (var model = Build(spec))
                {
                    if (metric == Metrics.LatencyMs)
                        return TrialRunner.LatencyMs(model, ((Generation.ILanguageModel)model).NumTokens, contextLength, latencyRepeats);
                    var (total, nonEmbedding) = ModelCost.CountParameters(model);
                    return metric == Metrics.Params ? total : nonEmbedding;
                }
            default:
                throw new SearchException($"{metric} cannot be a constraint: it is measured by training (constraints: {Metrics.Params}, {Metrics.NonEmbeddingParams}, {Metrics.FlopsPerToken}, {Metrics.LatencyMs})");
        }
    }

    static torch.nn.Module Build(JsonObject spec)
    {
        try
        {
            torch.random.manual_seed(0);
            return ModelFactory.Create(ModelConfig.Parse(spec.ToJsonString()));
        }
        catch (ConfigException e)
        {
            throw new InvalidCandidateException(e.Message);
        }
    }
}
