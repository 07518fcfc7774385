using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Modules;
using TransformerForge.Runtime;

namespace TransformerForge.Models;

/// <summary>
/// Builds the module a configuration describes; the one place that maps config types to model classes. Every model is
/// built on the CPU after checking that its parameters fit the memory available (see <see cref="MemoryGuard"/>): an
/// oversized configuration is refused with its estimate before anything is allocated.
/// </summary>
public static class ModelFactory
{
    /// <summary>Any model: a language model, or a vision, continuous, encoder-decoder model or a bare layer stack.</summary>
    public static torch.nn.Module Create(ModelConfig config)
    {
        CheckFits(config);
        return config switch
        {
            TransformerWrapperConfig or FeedbackTransformerConfig or TransformerPlusPlusConfig => BuildLanguageModel(config),
            ContinuousTransformerWrapperConfig c => new ContinuousTransformerWrapper(c),
            ViTransformerWrapperConfig c => new ViTransformerWrapper(c),
            XTransformerConfig c => new XTransformer(c),
            AttentionLayersModelConfig c => new AttentionLayers(c.Layers),
            _ => throw new ConfigException("type", $"no model for configuration type '{config.Type}'"),
        };
    }

    /// <summary>Whether <paramref name="config"/> describes a token language model (what training and generation take).</summary>
    public static bool IsLanguageModel(ModelConfig config) => Vocabulary(config) is not null;

    /// <summary>A language model's vocabulary size (its <c>num_tokens</c>), read from the configuration alone; null for any other type.</summary>
    public static int? Vocabulary(ModelConfig config) => config switch
    {
        TransformerWrapperConfig c => c.NumTokens,
        FeedbackTransformerConfig c => c.NumTokens,
        TransformerPlusPlusConfig c => c.NumTokens,
        _ => null,
    };

    /// <summary>A token language model: <c>TransformerWrapper</c>, <c>FeedbackTransformer</c> or <c>TransformerPlusPlus</c>; any other type is an error naming <c>type</c>.</summary>
    public static LanguageModel CreateLanguageModel(ModelConfig config)
    {
        if (!IsLanguageModel(config))
            throw new ConfigException("type", $"a {config.Type} is not a language model (TransformerWrapper, FeedbackTransformer or TransformerPlusPlus)");
        CheckFits(config);
        return BuildLanguageModel(config);
    }

    static LanguageModel BuildLanguageModel(ModelConfig config) => config switch
    {
        TransformerWrapperConfig c => new TransformerWrapper(c),
        FeedbackTransformerConfig c => new FeedbackLanguageModel(c.NumTokens, c.Dim, c.Heads, c.FeedForwardWidth, c.Depth, c.SharedKv, c.Dropout, c.MaxSeqLen - 1),
        TransformerPlusPlusConfig c => new TransformerPlusPlus(c),
        _ => throw new ConfigException("type", $"a {config.Type} is not a language model (TransformerWrapper, FeedbackTransformer or TransformerPlusPlus)"),
    };

    static void CheckFits(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        MemoryGuard.EnsureFits(ModelSize.ForParameters(config), torch.CPU, "building the model");
    }
}
