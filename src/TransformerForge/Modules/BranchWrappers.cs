using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>Scales a branch's output by a constant: macaron's half-step feed-forwards (Lu et al. 2019).</summary>
public sealed class Scale : Block
{
    readonly Block _fn;
    readonly double _value;

    public Scale(double value, Block fn) : base(nameof(Scale))
    {
        _value = value; _fn = fn;
        register_module("fn", fn);
    }

    public override BlockOutput Forward(Tensor x, BlockInputs inputs) => _fn.Forward(x, inputs).Map(t => t * _value);
}

/// <summary>ReZero (Bachlechner et al. 2020): the branch output times a learned scalar that starts at 0, instead of a norm.</summary>
public sealed class Rezero : Block
{
    readonly Block _fn;

    public Rezero(Block fn) : base(nameof(Rezero))
    {
        _fn = fn;
        register_module("fn", fn);
        register_parameter("g", new Parameter(zeros(1)));
    }

    public override BlockOutput Forward(Tensor x, BlockInputs inputs) => _fn.Forward(x, inputs).Map(t => t * get_parameter("g")!);
}

/// <summary>
/// Token shifting (from RWKV / PENG Bo's "time-mix"): split the features into segments and shift each along the sequence
/// by its own amount (0..s for causal stacks, -s..s otherwise), so a branch sees neighbouring tokens for free.
/// </summary>
public sealed class ShiftTokens : Block
{
    readonly Block _fn;
    readonly int[] _shifts;

    public ShiftTokens(IEnumerable<int> shifts, Block fn) : base(nameof(ShiftTokens))
    {
        _shifts = shifts.ToArray(); _fn = fn;
        register_module("fn", fn);
    }

    int MaxShift => _shifts.Max();

    public override BlockOutput Forward(Tensor x, BlockInputs inputs)
    {
        var mask = inputs.Mask;
        var masked = mask is null ? x : x.masked_fill(mask.logical_not().unsqueeze(-1), 0.0);
        long n = x.shape[1];

        // With a cache, prepend the (masked) inputs of the last positions so the shifted segments can reach them.
        Tensor source = masked;
        long history = 0;
        if (inputs.Cache is { } cache && MaxShift > 0)
        {
            if (_shifts.Min() < 0) throw new InvalidOperationException("token shifting into the future cannot be cached");
            if (cache.History(CacheHistory.ShiftTokens) is { } h) { source = cat(new[] { h, masked }, 1); history = h.shape[1]; }
            var keep = Math.Min(MaxShift, source.shape[1]);
            cache.KeepHistory(CacheHistory.ShiftTokens, source.narrow(1, source.shape[1] - keep, keep));
        }

        long featsPerShift = x.shape[^1] / _shifts.Length;
        var parts = x.split(featsPerShift, -1);
        var srcParts = source.split(featsPerShift, -1);
        var shifted = new List<Tensor>();
        for (int s = 0; s < parts.Length; s++)
        {
            if (s >= _shifts.Length || _shifts[s] == 0) { shifted.Add(parts[s]); continue; }
            int amount = _shifts[s];
            // pad (0, 0, amount, -amount): move features `amount` positions later (negative: earlier), zero-filling.
            var moved = nn.functional.pad(srcParts[s], new long[] { 0, 0, amount, -amount });
            shifted.Add(moved.narrow(1, history, n));
        }
        return _fn.Forward(cat(shifted, -1), inputs);
    }
}

/// <summary>
/// LayerScale (Touvron et al. 2021, "Going deeper with Image Transformers"): the branch output times a learned scale per
/// feature, <c>gamma</c>, starting at <c>layerscale_init_value</c> (x-transformers 1.40; with its unit offset the scale
/// is gamma + 1 and gamma starts at init − 1).
/// </summary>
public sealed class LayerScale : Block
{
    readonly Block _fn;
    readonly double _offset;

    public LayerScale(Block fn, int dim, double initValue, bool unitOffset) : base(nameof(LayerScale))
    {
        _fn = fn;
        _offset = unitOffset ? 1 : 0;
        register_module("fn", fn);
        register_parameter("gamma", new Parameter(full(dim, initValue - _offset)));
    }

    public override BlockOutput Forward(Tensor x, BlockInputs inputs)
    {
        var gamma = get_parameter("gamma")!;
        return _fn.Forward(x, inputs).Map(t => t * (_offset == 0 ? gamma : gamma + _offset));
    }
}
