using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Generation;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>
/// Autoregressive language model on a <see cref="FeedbackTransformer"/>: token embedding, the transformer, and a
/// linear layer to next-token logits (labml's <c>AutoregressiveModel</c> for its feedback experiments).
/// Parameters: <c>embedding</c>, <c>transformer.*</c>, <c>generator</c>.
/// As an <see cref="ILanguageModel"/>, its decoding state is the <see cref="FeedbackMemory"/>.
/// </summary>
public sealed class FeedbackLanguageModel : LanguageModel
{
    private readonly Embedding _embedding;
    private readonly FeedbackTransformer _transformer;
    private readonly Linear _generator;

    public FeedbackLanguageModel(int numTokens, int dim, int heads, int ffInnerDim, int depth, bool sharedKv,
        double dropout = 0.0, int maxMemory = 4096) : base(nameof(FeedbackLanguageModel))
    {
        NumTokens = numTokens;
        _embedding = nn.Embedding(numTokens, dim);
        _transformer = new FeedbackTransformer(dim, heads, ffInnerDim, depth, sharedKv, dropout, maxMemory);
        _generator = nn.Linear(dim, numTokens);
        register_module("embedding", _embedding);
        register_module("transformer", _transformer);
        register_module("generator", _generator);
    }

    public override int NumTokens { get; }

    /// <summary>The last step of a sequence attends over <see cref="FeedbackTransformer.MaxMemory"/> earlier steps.</summary>
    public override int MaxSeqLen => _transformer.MaxMemory + 1;

    public FeedbackTransformer Transformer => _transformer;

    /// <summary>
    /// Logits <c>[batch, seq, numTokens]</c>. With a <paramref name="state"/> (a <see cref="FeedbackMemory"/>), the
    /// tokens continue what the memory has seen and extend it. <paramref name="mask"/> <c>[batch, seq]</c>: false for
    /// padding, which later steps do not see.
    /// </summary>
    public override Tensor Logits(Tensor tokens, Tensor? mask = null, IDecodingState? state = null)
    {
        var embedded = _embedding.forward(tokens);
        var output = state switch
        {
            null when mask is null => _transformer.forward(embedded),
            null => ForwardFresh(embedded, mask),
            FeedbackMemory memory => _transformer.Forward(embedded, memory, mask),
            _ => throw new ArgumentException($"a feedback transformer cannot decode with a {state.GetType().Name}", nameof(state)),
        };
        return _generator.forward(output);
    }

    /// <summary>An empty memory (the generation cache).</summary>
    public FeedbackMemory NewMemory() => _transformer.NewMemory();

    public override IDecodingState? CreateDecodingState() => NewMemory();

    /// <summary>
    /// Generation: the next token ids <c>[batch]</c> → logits <c>[batch, numTokens]</c> for the token after them,
    /// extending <paramref name="memory"/> by one step.
    /// </summary>
    public Tensor Step(Tensor tokens, FeedbackMemory memory, Tensor? mask = null) =>
        _generator.forward(_transformer.Step(_embedding.forward(tokens), memory, mask));

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

    private Tensor ForwardFresh(Tensor embedded, Tensor mask)
    {
        using var memory = _transformer.NewMemory();
        return _transformer.Forward(embedded, memory, mask);
    }
}
