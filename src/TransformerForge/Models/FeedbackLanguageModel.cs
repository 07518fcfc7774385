using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>
/// Autoregressive language model on a <see cref="FeedbackTransformer"/>: token embedding, the transformer, and a
/// linear layer to next-token logits (labml's <c>AutoregressiveModel</c> for its feedback experiments).
/// Parameters: <c>embedding</c>, <c>transformer.*</c>, <c>generator</c>.
/// </summary>
public sealed class FeedbackLanguageModel : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "embedding")] private readonly Embedding _embedding;
    [ComponentName(Name = "transformer")] private readonly FeedbackTransformer _transformer;
    [ComponentName(Name = "generator")] private readonly Linear _generator;

    public FeedbackLanguageModel(int numTokens, int dModel, int heads, int dFf, int nLayers, bool sharedKv,
        double dropout = 0.0, int maxMemory = 4096) : base(nameof(FeedbackLanguageModel))
    {
        NumTokens = numTokens;
        _embedding = nn.Embedding(numTokens, dModel);
        _transformer = new FeedbackTransformer(dModel, heads, dFf, nLayers, sharedKv, dropout, maxMemory);
        _generator = nn.Linear(dModel, numTokens);
        RegisterComponents();
    }

    public int NumTokens { get; }
    public FeedbackTransformer Transformer => _transformer;

    /// <summary>Token ids <c>[batch, seq]</c> (int64) → next-token logits <c>[batch, seq, numTokens]</c>.</summary>
    public override Tensor forward(Tensor tokens) =>
        _generator.forward(_transformer.forward(_embedding.forward(tokens)));

    /// <summary>An empty memory (generation cache) for <see cref="Step"/>.</summary>
    public FeedbackMemory NewMemory() => _transformer.NewMemory();

    /// <summary>
    /// Generation: the next token ids <c>[batch]</c> → logits <c>[batch, numTokens]</c> for the token after them,
    /// extending <paramref name="memory"/> by one step.
    /// </summary>
    public Tensor Step(Tensor tokens, FeedbackMemory memory) =>
        _generator.forward(_transformer.Step(_embedding.forward(tokens), memory));

    /// <summary>
    /// Maps labml's <c>AutoregressiveModel</c> names: <c>src_embed.*</c> → <c>embedding.*</c>,
    /// <c>transformer.*</c> via <see cref="FeedbackTransformer.FromLabmlName"/>, <c>generator.*</c> unchanged.
    /// </summary>
    public static string FromLabmlName(string labmlName)
    {
        const string transformer = "transformer.";
        if (labmlName.StartsWith("src_embed.", StringComparison.Ordinal))
            return "embedding." + labmlName["src_embed.".Length..];
        if (labmlName.StartsWith(transformer, StringComparison.Ordinal))
            return transformer + FeedbackTransformer.FromLabmlName(labmlName[transformer.Length..]);
        return labmlName;
    }
}
