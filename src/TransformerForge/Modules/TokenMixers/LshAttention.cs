using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>lsh_attn</c> token mixer: Hugging Face's <c>ReformerAttention</c> with its output projection replaced by
/// the identity (so the op returns DimOut features): a LayerNorm (ε = 1e-12, Reformer's default), then
/// <see cref="LshSelfAttention"/>. Its decoding state keeps every position's shared query/key, value and buckets.
/// Names: <c>attn.layer_norm</c>, <c>attn.self_attention.*</c>.
/// </summary>
public sealed class LshAttention : TokenMixer
{
    readonly ReformerAttention _attn;

    /// <param name="bucketFactors">Buckets per hash round (one number, or two for a factorised hash); see <see cref="LshSelfAttention.AutoBuckets"/>.</param>
    /// <param name="hashSeed">Seed of the fixed rotations used in evaluation.</param>
    public LshAttention(int dim, int dimHead, int heads, int numHashes, int bucketSize, IReadOnlyList<int> bucketFactors, int hashSeed)
        : base(nameof(LshAttention), dim, dimHead, heads)
    {
        register_module("attn", _attn = new ReformerAttention(dim, new LshSelfAttention(dim, dimHead, heads, numHashes, bucketSize, bucketFactors, hashSeed)));
    }

    public LshSelfAttention SelfAttention => _attn.SelfAttention;

    public override TokenMixerState NewState() => _attn.SelfAttention.NewState();

    public override Tensor Forward(Tensor x, TokenMixerState? state) =>
        _attn.SelfAttention.Forward(_attn.LayerNorm.forward(x), StateAs<LshSelfAttention.LshState>(state));

    /// <summary>The container Hugging Face names <c>attn</c>: <c>layer_norm</c> and <c>self_attention</c>.</summary>
    sealed class ReformerAttention : ForgeModule
    {
        public ReformerAttention(int dim, LshSelfAttention selfAttention) : base(nameof(ReformerAttention))
        {
            register_module("layer_norm", LayerNorm = nn.LayerNorm(dim, eps: 1e-12));
            register_module("self_attention", SelfAttention = selfAttention);
        }

        public LayerNorm LayerNorm { get; }
        public LshSelfAttention SelfAttention { get; }
    }
}
