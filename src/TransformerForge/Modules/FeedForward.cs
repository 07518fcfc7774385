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
/// Position-wise feed-forward: project in (GELU, ReLU², Swish, or a GLU of one of them: SwiGLU is Swish + GLU),
/// optional LayerNorm after the activation (NormFormer, Shleifer et al. 2021), dropout, project out, optionally without
/// biases (<c>ff_no_bias</c>). Submodules sit at x-transformers' indices: 0.20's <c>net</c> keeps an identity where the
/// norm is off; 1.40's <c>ff</c> leaves it out (so the output projection is <c>ff.2</c>, or <c>ff.3</c> with the norm).
/// </summary>
public sealed class FeedForward : Block
{
    readonly nn.Module<Tensor, Tensor> _projectIn;
    readonly Linear? _inLinear;
    readonly nn.Module<Tensor, Tensor>? _activation;
    readonly nn.Module<Tensor, Tensor>? _postActNorm;
    readonly OptionalDropout _dropout;
    readonly Linear _projectOut;

    /// <param name="dim">Input width (and output width unless <paramref name="dimOut"/> is given).</param>
    /// <param name="options">The <c>ff_*</c> options, as configured.</param>
    /// <param name="zeroInitOutput">The output projection starts at zero (<c>zero_init_branch_output</c>).</param>
    public FeedForward(int dim, FeedForwardOptions options, int? dimOut = null, bool zeroInitOutput = false) : base(nameof(FeedForward))
    {
        options.Validate();
        int inner = (int)(dim * options.Mult);
        bool bias = !options.NoBias;
        nn.Module<Tensor, Tensor> act = options.ReluSquared ? new ReluSquared() : options.Swish ? nn.SiLU() : nn.GELU();
        if (options.Glu) _projectIn = new GLU(dim, inner, act);
        else _projectIn = nn.Sequential(_inLinear = nn.Linear(dim, inner, hasBias: bias), _activation = act);
        _postActNorm = !options.PostActLn ? null : options.IsV140 ? new BiaslessLayerNorm(inner) : nn.LayerNorm(inner);
        _dropout = new OptionalDropout(options.Dropout);
        _projectOut = nn.Linear(inner, dimOut ?? dim, hasBias: bias);
        if (zeroInitOutput) Init.Zero(_projectOut);
        if (options.IsV140)
            register_module("ff", _postActNorm is not null ? nn.ModuleList(_projectIn, _postActNorm, _dropout, _projectOut) : nn.ModuleList(_projectIn, _dropout, _projectOut));
        else // 0.20's indices: net.1 is the norm or an Identity (registered for the numbering, never called).
            register_module("net", nn.ModuleList(_projectIn, _postActNorm ?? nn.Identity(), _dropout, _projectOut));
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
