using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>mha</c> token mixer (from flash-attention's MHA, plain PyTorch path): causal softmax attention over
/// OpHeads heads of size hidden/totalHeads, with rotary embeddings (Su et al. 2021) on the first
/// <c>rotaryDim</c> features of each query and key head (rotaryDim = 0: none).
/// Names: <c>Wqkv</c> (Linear hidden → 3·OpSize, packed as (three, head, dim)), <c>rotary_emb.inv_freq</c>.
/// </summary>
public sealed class RotaryMultiHeadAttention : TokenMixer
{
    readonly Linear _wqkv;
    readonly RotaryEmbedding? _rotary;

    public RotaryMultiHeadAttention(int hiddenSize, int totalHeads, int opHeads, int rotaryDim, bool bias = true)
        : base(nameof(RotaryMultiHeadAttention), hiddenSize, totalHeads, opHeads)
    {
        if (rotaryDim < 0 || rotaryDim > HeadSize || rotaryDim % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(rotaryDim), $"rotary dim {rotaryDim} must be even and at most the head size {HeadSize}");
        RotaryDim = rotaryDim;
        register_module("Wqkv", _wqkv = nn.Linear(hiddenSize, 3 * OpSize, hasBias: bias));
        if (rotaryDim > 0) register_module("rotary_emb", _rotary = new RotaryEmbedding(rotaryDim));
    }

    public int RotaryDim { get; }

    public override Tensor forward(Tensor x)
    {
        var (batch, length) = (x.shape[0], x.shape[1]);
        var qkv = _wqkv.forward(x).view(batch, length, 3, OpHeads, HeadSize);
        var (q, k, v) = (qkv.select(2, 0), qkv.select(2, 1), qkv.select(2, 2));     // [B, L, H, D]

        if (_rotary is not null)
        {
            // Angles [L, 1, rotaryDim] broadcast over heads; the remaining features pass through unrotated.
            var angles = _rotary.Forward(length).squeeze(0).squeeze(0).unsqueeze(1);
            q = RotateFirst(q, angles);
            k = RotateFirst(k, angles);
        }

        var scale = 1.0 / Math.Sqrt(HeadSize);
        var scores = einsum("bthd,bshd->bhts", q, k * scale);
        var future = ones(length, length, dtype: ScalarType.Bool, device: x.device).triu(1);
        scores = scores.masked_fill(future, double.NegativeInfinity);
        var attention = scores.softmax(-1);
        return einsum("bhts,bshd->bthd", attention, v).reshape(batch, length, OpSize);
    }

    Tensor RotateFirst(Tensor t, Tensor angles)
    {
        if (RotaryDim == HeadSize) return RotaryEmbedding.Apply(t, angles);
        var rotated = RotaryEmbedding.Apply(t.narrow(-1, 0, RotaryDim), angles);
        return cat([rotated, t.narrow(-1, RotaryDim, HeadSize - RotaryDim)], -1);
    }
}
