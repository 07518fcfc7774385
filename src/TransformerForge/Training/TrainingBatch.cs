using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// One batch for next-token training: model inputs [B, n], targets [B, n] (the inputs shifted by one) and an optional
/// bool mask [B, n] of the target positions that count (null: every position).
/// </summary>
public sealed record TrainingBatch(Tensor Input, Tensor Target, Tensor? LossMask = null)
{
    public TrainingBatch To(Device device) => new(Input.to(device), Target.to(device), LossMask?.to(device));

    /// <summary>Target positions that count towards the loss.</summary>
    public long CountedTokens => LossMask is null ? Target.NumberOfElements : LossMask.sum().item<long>();
}
