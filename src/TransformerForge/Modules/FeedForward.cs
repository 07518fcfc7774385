using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Config;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>Squared ReLU (So et al. 2021, "Primer").</summary>
public sealed class ReluSquared() : ForgeModule<Tensor, Tensor>(nameof(ReluSquared))
{
    public override Tensor forward(Tensor x) => nn.functional.relu(x).square();
}

/// <summary>Gated linear unit with a chosen activation (Shazeer 2020, "GLU Variants Improve Transformer").</summary>
public sealed class GLU : ForgeModule<Tensor, Tensor>
{
    readonly Linear _proj;
    readonly nn.Module<Tensor, Tensor> _act;

    public GLU(int dimIn, int dimOut, nn.Module<Tensor, Tensor> activation) : base(nameof(GLU))
    {
        _act = activation;
        _proj = nn.Linear(dimIn, dimOut * 2);
        register_module("proj", _proj);
    }

    public override Tensor forward(Tensor x)
    {
        var halves = _proj.forward(x).chunk(2, -1);
        return halves[0] * _act.forward(halves[1]);
    }
}

/// <summary>
/// Position-wise feed-forward: project in (GELU, ReLU² or a GLU), optional LayerNorm after the activation
/// (NormFormer, Shleifer et al. 2021), dropout, project out. Submodules sit in <c>net</c> at x-transformers' indices.
/// </summary>
public sealed class FeedForward : Block
{
    readonly nn.Module<Tensor, Tensor> _projectIn;
    readonly Linear? _inLinear;
    readonly nn.Module<Tensor, Tensor>? _activation;
    readonly LayerNorm? _postActNorm;
    readonly OptionalDropout _dropout;
    readonly Linear _projectOut;

    /// <param name="dim">Input width (and output width unless <paramref name="dimOut"/> is given).</param>
    /// <param name="options">The <c>ff_*</c> options, as configured.</param>
    /// <param name="zeroInitOutput">The output projection starts at zero (<c>zero_init_branch_output</c>).</param>
    public FeedForward(int dim, FeedForwardOptions options, int? dimOut = null, bool zeroInitOutput = false) : base(nameof(FeedForward))
    {
        options.Validate();
        int inner = (int)(dim * options.Mult);
        nn.Module<Tensor, Tensor> act = options.ReluSquared ? new ReluSquared() : nn.GELU();
        if (options.Glu) _projectIn = new GLU(dim, inner, act);
        else _projectIn = nn.Sequential(_inLinear = nn.Linear(dim, inner), _activation = act);
        _postActNorm = options.PostActLn ? nn.LayerNorm(inner) : null;
        _dropout = new OptionalDropout(options.Dropout);
        _projectOut = nn.Linear(inner, dimOut ?? dim);
        if (zeroInitOutput) Init.Zero(_projectOut);
        // x-transformers' indices: net.1 is the norm or an Identity (skipped in the forward, not called).
        register_module("net", nn.ModuleList(_projectIn, _postActNorm ?? (nn.Module<Tensor, Tensor>)nn.Identity(), _dropout, _projectOut));
    }

    public Tensor Forward(Tensor x) => Forward(x, cache: null);

    /// <summary>The forward; with a decoding cache, the projections multiply by weights transposed once per run (see <see cref="LayerCache.Linear(LayerCache?, string, Tensor, TorchSharp.Modules.Linear)"/>).</summary>
    Tensor Forward(Tensor x, LayerCache? cache)
    {
        var h = _inLinear is not null ? _activation!.forward(LayerCache.Linear(cache, "ff_in", x, _inLinear)) : _projectIn.forward(x);
        if (_postActNorm is not null) h = _postActNorm.forward(h);
        return LayerCache.Linear(cache, "ff_out", _dropout.forward(h), _projectOut);
    }

    public override BlockOutput Forward(Tensor x, BlockInputs inputs) => new(Forward(x, inputs.Cache));
}
