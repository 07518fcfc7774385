using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Dynamic position bias (Wang et al. 2021, CrossFormer; x-transformers 1.40): an MLP maps each signed query-key
/// distance (optionally sign(d)·log(|d| + 1)) to one bias per head, so the bias is continuous in the distance and
/// defined for any length. Layout as in x-transformers: <c>mlp.0</c> = Linear(1, dim) [+ LayerNorm] + SiLU,
/// <c>mlp.1..depth-1</c> = Linear(dim, dim) [+ LayerNorm] + SiLU, <c>mlp.depth</c> = Linear(dim, heads).
/// </summary>
public sealed class DynamicPositionBias : ForgeModule
{
    readonly List<nn.Module<Tensor, Tensor>> _layers = new();
    readonly bool _logDistance;

    public DynamicPositionBias(int dim, int heads, int depth, bool logDistance, bool norm) : base(nameof(DynamicPositionBias))
    {
        _logDistance = logDistance;
        var mlp = new ModuleList<nn.Module<Tensor, Tensor>>();
        for (int i = 0; i < depth; i++)
        {
            // x-transformers' first block normalises with its own bias-less LayerNorm, later blocks with torch's.
            nn.Module<Tensor, Tensor>? ln = !norm ? null : i == 0 ? new BiaslessLayerNorm(dim) : nn.LayerNorm(dim);
            var linear = nn.Linear(i == 0 ? 1 : dim, dim);
            mlp.Add(ln is null ? nn.Sequential(linear, nn.SiLU()) : nn.Sequential(linear, ln, nn.SiLU()));
        }
        mlp.Add(nn.Linear(dim, heads));
        _layers.AddRange(mlp);
        register_module("mlp", mlp);
    }

    /// <summary>Bias [1, heads, i, j] for the last <paramref name="i"/> of <paramref name="j"/> positions as queries and all j as keys.</summary>
    public Tensor Forward(long i, long j, Device device, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        // Every distance a query can have to a key, -(j-1)..(j-1), through the MLP once.
        var pos = arange(-(j - 1), j, device: device).to_type(dtype).unsqueeze(-1);
        if (_logDistance) pos = pos.sign() * (pos.abs() + 1).log();
        foreach (var layer in _layers) pos = layer.forward(pos);          // [2j-1, heads]

        // Query at position q (j-i..j-1) and key k: row (q - k) + (j - 1).
        var q = arange(j - i, j, device: device).unsqueeze(1);
        var k = arange(j, device: device).unsqueeze(0);
        var index = (q - k + (j - 1)).flatten();
        var bias = pos.index_select(0, index).reshape(i, j, -1);          // [i, j, heads]
        return bias.permute(2, 0, 1).unsqueeze(0).MoveToOuterDisposeScope();
    }
}
