using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Modules;

namespace TransformerForge.Models;

/// <summary>Builds the module a configuration describes; the one place that maps config types to model classes.</summary>
public static class ModelFactory
{
    /// <summary>Any model: a language model, or a vision, continuous, encoder-decoder model or a bare layer stack.</summary>
    public static torch.nn.Module Create(ModelConfig config) => config switch
    {
        TransformerWrapperConfig or FeedbackTransformerConfig or TransformerPlusPlusConfig => CreateLanguageModel(config),
        ContinuousTransformerWrapperConfig c => new ContinuousTransformerWrapper(c),
        ViTransformerWrapperConfig c => new ViTransformerWrapper(c),
        XTransformerConfig c => new XTransformer(c),
        AttentionLayersModelConfig c => new AttentionLayers(c.Layers),
        _ => throw new ConfigException("type", $"no model for configuration type '{config.Type}'"),
    };

    /// <summary>Whether <paramref name="config"/> describes a token language model (what training and generation take).</summary>
    public static bool IsLanguageModel(ModelConfig config) => config is TransformerWrapperConfig or FeedbackTransformerConfig or TransformerPlusPlusConfig;

    /// <summary>A token language model: <c>TransformerWrapper</c>, <c>FeedbackTransformer</c> or <c>TransformerPlusPlus</c>; any other type is an error naming <c>type</c>.</summary>
    public static LanguageModel CreateLanguageModel(ModelConfig config) => config switch
    {
        TransformerWrapperConfig c => new TransformerWrapper(c),
        FeedbackTransformerConfig c => new FeedbackLanguageModel(c.NumTokens, c.Dim, c.Heads, c.FeedForwardWidth, c.Depth, c.SharedKv, c.Dropout, c.MaxSeqLen - 1),
        TransformerPlusPlusConfig c => new TransformerPlusPlus(c),
        _ => throw new ConfigException("type", $"a {config.Type} is not a language model (TransformerWrapper, FeedbackTransformer or TransformerPlusPlus)"),
    };
}
