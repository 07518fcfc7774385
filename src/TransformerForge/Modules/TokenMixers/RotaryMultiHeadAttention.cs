using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>mha</c> token mixer (from flash-attention's MHA, plain PyTorch path): causal softmax attention over
/// <see cref="TokenMixer.Heads"/> heads, with rotary embeddings (Su et al. 2021) on the first <c>rotaryDim</c>
/// features of each query and key head (rotaryDim = 0: none). Its decoding state is a KV cache.
/// Names: <c>Wqkv</c> (Linear dim → 3·DimOut, packed as (three, head, dim_head)), <c>rotary_emb.inv_freq</c>.
/// </summary>
public sealed class RotaryMultiHeadAttention : TokenMixer
{
    readonly Linear _wqkv;
    readonly RotaryEmbedding? _rotary;

    public RotaryMultiHeadAttention(int dim, int dimHead, int heads, int rotaryDim, bool bias = true)
        : base(nameof(RotaryMultiHeadAttention), dim, dimHead, heads)
    {
        if (rotaryDim < 0 || rotaryDim > DimHead || rotaryDim % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(rotaryDim), $"rotary dim {rotaryDim} must be even and at most the head size {DimHead}");
        RotaryDim = rotaryDim;
        register_module("Wqkv", _wqkv = nn.Linear(dim, 3 * DimOut, hasBias: bias));
        if (rotaryDim > 0) register_module("rotary_emb", _rotary = new RotaryEmbedding(rotaryDim));
    }

    public int RotaryDim { get; }

    public override TokenMixerState NewState() => new KeyValueState();

    public override Tensor Forward(Tensor x, TokenMixerState? state)
    {
        var cache = StateAs<KeyValueState>(state);
        var (batch, length) = (x.shape[0], x.shape[1]);
        long offset = cache?.Length ?? 0;
        var qkv = _wqkv.forward(x).view(batch, length, 3, Heads, DimHead);
        var (q, k, v) = (qkv.select(2, 0), qkv.select(2, 1), qkv.select(2, 2));     // [B, n, H, D]

        if (_rotary is not null)
        {
            // Angles of positions offset .. offset+n-1, [n, 1, rotaryDim], broadcast over heads.
            var angles = _rotary.Forward(offset + length).squeeze(0).squeeze(0).narrow(0, offset, length).unsqueeze(1);
            q = RotateFirst(q, angles);
            k = RotateFirst(k, angles);
        }
        if (cache is not null) (k, v) = cache.Append(k, v, length);

        // Query t (absolute offset + t) sees keys 0 .. offset + t.
        var scale = 1.0 / Math.Sqrt(DimHead);
        var scores = einsum("bthd,bshd->bhts", q, k * scale);
        var future = ones(length, k.shape[1], dtype: ScalarType.Bool, device: x.device).triu(offset + 1);
        scores = scores.masked_fill(future, double.NegativeInfinity);
        var attention = scores.softmax(-1);
        return einsum("bhts,bshd->bthd", attention, v).reshape(batch, length, DimOut);
    }

    Tensor RotateFirst(Tensor t, Tensor angles)
    {
        if (RotaryDim == DimHead) return RotaryEmbedding.Apply(t, angles);
        var rotated = RotaryEmbedding.Apply(t.narrow(-1, 0, RotaryDim), angles);
        return cat([rotated, t.narrow(-1, RotaryDim, DimHead - RotaryDim)], -1);
    }

    /// <summary>Rotated keys and values of every position so far, [batch, seen, heads, dim_head].</summary>
    sealed class KeyValueState : TokenMixerState
    {
        public (Tensor Keys, Tensor Values) Append(Tensor keys, Tensor values, long n)
        {
            if (Get("k") is { } k) (keys, values) = (cat([k, keys], 1), cat([Get("v")!, values], 1));
            Set("k", keys);
            Set("v", values);
            Advance(n);
            return (keys, values);
        }
    }
}
