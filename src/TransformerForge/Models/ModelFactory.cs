using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Modules;
using TransformerForge.Runtime;

namespace TransformerForge.Models;

/// <summary>Builds the module a configuration describes; the one place that maps config types to model classes.</summary>
public static class ModelFactory
{
    /// <summary>
    /// Builds the model on the CPU after checking that its parameters fit the memory available (see
    /// <see cref="MemoryGuard"/>): an oversized configuration is refused with its estimate before anything is allocated.
    /// </summary>
    public static torch.nn.Module Create(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        MemoryGuard.EnsureFits(ModelSize.ForParameters(config), torch.CPU, "building the model");
        return Build(config);
    }

    static torch.nn.Module Build(ModelConfig config) => config switch
    {
        TransformerWrapperConfig c => new TransformerWrapper(c),
        ContinuousTransformerWrapperConfig c => new ContinuousTransformerWrapper(c),
        ViTransformerWrapperConfig c => new ViTransformerWrapper(c),
        XTransformerConfig c => new XTransformer(c),
        FeedbackTransformerConfig c => new FeedbackLanguageModel(c.NumTokens, c.Dim, c.Heads, c.FeedForwardWidth, c.Depth, c.SharedKv, c.Dropout, c.MaxSeqLen - 1),
        AttentionLayersModelConfig c => new AttentionLayers(c.Layers),
        _ => throw new ConfigException("type", $"no model for configuration type '{config.Type}'"),
    };
}
