using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>How a block's output joins the residual stream: plain addition, or a GRU gate (Parisotto et al. 2019).</summary>
public abstract class ResidualJoin(string name) : ForgeModule(name)
{
    public abstract Tensor Forward(Tensor output, Tensor residual);
}

/// <summary>x + residual, optionally with a learned per-feature scale on the residual (<c>scale_residual</c>).</summary>
public sealed class Residual : ResidualJoin
{

    public Residual(int dim, bool scaleResidual) : base(nameof(Residual))
    {
        if (scaleResidual)
        {
            register_parameter("residual_scale", new Parameter(ones(dim)));
        }
    }

    public override Tensor Forward(Tensor output, Tensor residual) =>
        get_parameter("residual_scale") is { } scale ? output + residual * scale : output + residual;
}

/// <summary>Gated residual (<c>gate_residual</c>, "Stabilizing Transformers for RL"): a GRU cell with the block output as input and the residual as state.</summary>
public sealed class GRUGating : ResidualJoin
{
    readonly GRUCell _gru;

    public GRUGating(int dim, bool scaleResidual) : base(nameof(GRUGating))
    {
        _gru = nn.GRUCell(dim, dim);
        register_module("gru", _gru);
        if (scaleResidual)
        {
            register_parameter("residual_scale", new Parameter(ones(dim)));
        }
    }

    public override Tensor Forward(Tensor output, Tensor residual)
    {
        if (get_parameter("residual_scale") is { } scale) residual = residual * scale;
        var d = output.shape[^1];
        return _gru.forward(output.reshape(-1, d), residual.reshape(-1, d)).reshape(output.shape);
    }
}
