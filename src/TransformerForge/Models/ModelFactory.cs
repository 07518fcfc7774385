using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Modules;

namespace TransformerForge.Models;

/// <summary>Builds the module a configuration describes; the one place that maps config types to model classes.</summary>
public static class ModelFactory
{
    public static torch.nn.Module Create(ModelConfig config) => config switch
    {
        TransformerWrapperConfig c => new TransformerWrapper(c),
        ContinuousTransformerWrapperConfig c => new ContinuousTransformerWrapper(c),
        ViTransformerWrapperConfig c => new ViTransformerWrapper(c),
        XTransformerConfig c => new XTransformer(c),
        FeedbackTransformerConfig c => new FeedbackLanguageModel(c.NumTokens, c.Dim, c.Heads, c.FeedForwardWidth, c.Depth, c.SharedKv, c.Dropout, c.MaxSeqLen - 1),
        AttentionLayersModelConfig c => new AttentionLayers(c.Layers),
        TransformerPlusPlusConfig c => new TransformerPlusPlus(c),
        _ => throw new ConfigException("type", $"no model for configuration type '{config.Type}'"),
    };
}
