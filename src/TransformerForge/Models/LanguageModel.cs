using TorchSharp;
using TransformerForge.Generation;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>
/// A token language model that is also a module: what the trainer, the evaluator, generation and the CLI take, so
/// none of them casts. <see cref="TransformerWrapper"/> and <see cref="FeedbackLanguageModel"/> are ones;
/// <see cref="ModelFactory.CreateLanguageModel"/> and <c>ModelDirectory.LoadLanguageModel</c> return one.
/// <c>forward(tokens)</c> gives the logits.
/// </summary>
public abstract class LanguageModel : ForgeModule<Tensor, Tensor>, ILanguageModel
{
    protected LanguageModel(string name) : base(name) { }

    public abstract int NumTokens { get; }
    public abstract int MaxSeqLen { get; }
    public abstract Tensor Logits(Tensor tokens, Tensor? mask = null, IDecodingState? state = null);
    public abstract IDecodingState? CreateDecodingState();

    /// <summary>Logits [b, n, NumTokens] for token ids [b, n].</summary>
    public override Tensor forward(Tensor tokens) => Logits(tokens);
}
