using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// T5's bucketed relative position bias (Raffel et al. 2019): a learned scalar per head and distance bucket, exact for
/// near distances and log-spaced up to <c>max_distance</c>. Scaled by dim_head^0.5 as in x-transformers.
/// </summary>
public sealed class RelativePositionBias : ForgeModule
{
    readonly Embedding _bias;
    readonly double _scale;
    readonly bool _causal;
    readonly int _numBuckets, _maxDistance;

    public RelativePositionBias(double scale, bool causal, int numBuckets, int maxDistance, int heads) : base(nameof(RelativePositionBias))
    {
        _scale = scale; _causal = causal; _numBuckets = numBuckets; _maxDistance = maxDistance;
        _bias = nn.Embedding(numBuckets, heads);
        register_module("relative_attention_bias", _bias);
    }

    /// <summary>Bias [1, h, i, j] for queries at positions qStart..qStart+i-1 and keys at 0..j-1.</summary>
    public Tensor Forward(long i, long j, long qStart, Device device)
    {
        using var scope = NewDisposeScope();
        var qPos = arange(qStart, qStart + i, dtype: ScalarType.Int64, device: device);
        var kPos = arange(j, dtype: ScalarType.Int64, device: device);
        var rel = kPos.unsqueeze(0) - qPos.unsqueeze(1);
        var bucket = Bucket(rel);
        var values = _bias.forward(bucket);                 // [i, j, h]
        return (values.permute(2, 0, 1).unsqueeze(0) * _scale).MoveToOuterDisposeScope();
    }

    Tensor Bucket(Tensor relativePosition)
    {
        int numBuckets = _numBuckets;
        var ret = zeros_like(relativePosition);
        var n = -relativePosition;
        if (!_causal)
        {
            numBuckets /= 2;
            ret = ret + n.lt(0).to_type(ScalarType.Int64) * numBuckets;
            n = n.abs();
        }
        else
        {
            n = n.clamp_min(0);
        }
        int maxExact = numBuckets / 2;
        var isSmall = n.lt(maxExact);
        var large = maxExact + (log(n.to_type(ScalarType.Float32) / maxExact) / Math.Log((double)_maxDistance / maxExact)
            * (numBuckets - maxExact)).to_type(ScalarType.Int64);
        large = minimum(large, full_like(large, numBuckets - 1));
        return ret + where(isSmall, n, large);
    }
}
