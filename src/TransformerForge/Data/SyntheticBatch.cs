using static TorchSharp.torch;

namespace TransformerForge.Data;

/// <summary>
/// Examples of a synthetic task: <see cref="Tokens"/> int64 [B, SeqLen] and <see cref="LossMask"/> bool [B, SeqLen],
/// true at answer tokens. For next-token training use inputs Tokens[:, :-1], targets Tokens[:, 1:] and
/// LossMask[:, 1:] (see <see cref="ForNextToken"/>).
/// </summary>
public sealed record SyntheticBatch(Tensor Tokens, Tensor LossMask) : IDisposable
{
    /// <summary>Model inputs, targets and the target mask, each [B, SeqLen - 1]; new tensors the caller disposes.</summary>
    public (Tensor Input, Tensor Target, Tensor TargetMask) ForNextToken()
    {
        var length = Tokens.shape[1];
        return (Tokens.narrow(1, 0, length - 1), Tokens.narrow(1, 1, length - 1), LossMask.narrow(1, 1, length - 1));
    }

    public void Dispose()
    {
        Tokens.Dispose();
        LossMask.Dispose();
    }
}
