using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Generation;

/// <summary>Incremental-decoding state of a language model (a KV cache, a feedback memory, ...).</summary>
public interface IDecodingState : IDisposable
{
    /// <summary>Positions the state has consumed.</summary>
    long Length { get; }
}

/// <summary>
/// What training and generation need from a token model: logits for a sequence, and optionally an incremental mode
/// in which each call gets only the new tokens. Implemented by <c>TransformerWrapper</c> and the Feedback Transformer.
/// </summary>
public interface ILanguageModel
{
    int NumTokens { get; }
    /// <summary>Longest sequence the model accepts in one forward (absolute positions, training windows).</summary>
    int MaxSeqLen { get; }
    /// <summary>Logits [b, n, NumTokens] for tokens [b, n]; with a <paramref name="state"/>, tokens are the new ones only.</summary>
    Tensor Logits(Tensor tokens, Tensor? mask = null, IDecodingState? state = null);
    /// <summary>A fresh incremental state, or null when the model can only recompute.</summary>
    IDecodingState? CreateDecodingState();
}
