using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Attention of one step's query over the Feedback Transformer's memory (Fan et al. 2020, section 3), with labml's
/// relative position scores: for the memory entry j steps back,
/// <c>score_j = (q + u)·k_j + q·r_j + s_j</c>, scaled by 1/sqrt(dim_head), where <c>u</c> is a learned query bias
/// (<c>query_pos_bias</c>) and <c>r_j</c>, <c>s_j</c> a learned key embedding and bias for that distance
/// (<c>key_pos_embeddings</c>, <c>key_pos_bias</c>; the last row is the previous step). This is Transformer-XL's
/// decomposition (Dai et al. 2019, section 3.3) with the position-position term replaced by a learned bias.
/// <para>
/// Parameters: <c>query</c> (no bias), <c>key</c> (no bias) and <c>value</c> (with bias) when the layer projects its
/// own keys and values, <c>output</c>, <c>key_pos_embeddings</c> [maxMemory, heads, dim_head], <c>key_pos_bias</c>
/// [maxMemory, heads], <c>query_pos_bias</c> [heads, dim_head].
/// </para>
/// </summary>
public sealed class FeedbackAttention : ForgeModule
{
    private readonly Linear _query, _output;
    private readonly Linear? _key, _value;
    private readonly OptionalDropout _dropout;

    /// <param name="dim">Model width (labml's d_model).</param>
    /// <param name="heads">Number of heads; dim_head = dim / heads (labml's d_k).</param>
    /// <param name="projectsKeyValues">
    /// True for the original Feedback Transformer (this layer projects the memory to keys and values); false when the
    /// keys and values are computed once per step and shared by all layers.
    /// </param>
    /// <param name="dropout">Dropout on the attention probabilities.</param>
    /// <param name="maxMemory">Number of relative positions learned: the longest memory that can be attended.</param>
    public FeedbackAttention(int dim, int heads, bool projectsKeyValues, double dropout = 0.0, int maxMemory = 4096)
        : base(nameof(FeedbackAttention))
    {
        if (dim % heads != 0) throw new ArgumentException($"dim {dim} is not divisible by {heads} heads");
        Dim = dim;
        Heads = heads;
        DimHead = dim / heads;
        MaxMemory = maxMemory;

        _query = nn.Linear(dim, dim, hasBias: false);
        register_module("query", _query);
        if (projectsKeyValues)
        {
            _key = nn.Linear(dim, dim, hasBias: false);
            _value = nn.Linear(dim, dim, hasBias: true);
            register_module("key", _key);
            register_module("value", _value);
        }
        _output = nn.Linear(dim, dim);
        _dropout = new OptionalDropout(dropout);
        register_module("output", _output);
        register_module("dropout", _dropout);
        // labml starts the position terms at zero: attention begins purely content-based.
        register_parameter("key_pos_embeddings", new Parameter(zeros(maxMemory, heads, DimHead)));
        register_parameter("key_pos_bias", new Parameter(zeros(maxMemory, heads)));
        register_parameter("query_pos_bias", new Parameter(zeros(heads, DimHead)));
    }

    public int Dim { get; }
    public int Heads { get; }
    public int DimHead { get; }
    public int MaxMemory { get; }
    public bool ProjectsKeyValues => _key is not null;

    /// <summary>This layer's keys for memory entries <c>[..., dim]</c> → <c>[..., heads, dim_head]</c>.</summary>
    public Tensor ProjectKey(Tensor memory) => SplitHeads(OwnProjection(_key).forward(memory));

    /// <summary>This layer's values for memory entries <c>[..., dim]</c> → <c>[..., heads, dim_head]</c>.</summary>
    public Tensor ProjectValue(Tensor memory) => SplitHeads(OwnProjection(_value).forward(memory));

    /// <summary>
    /// <paramref name="x"/> <c>[batch, dim]</c> (the current step) attends over <paramref name="keys"/> and
    /// <paramref name="values"/> <c>[memory, batch, heads, dim_head]</c> (earlier steps, oldest first); returns
    /// <c>[batch, dim]</c>. <paramref name="visible"/> <c>[memory, batch]</c>, if given, hides the entries where it
    /// is false (padding); a row with no visible entry gets a meaningless (but finite) result.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor keys, Tensor values, Tensor? visible = null)
    {
        var memoryLength = keys.shape[0];
        if (memoryLength > MaxMemory)
            throw new InvalidOperationException($"memory of {memoryLength} steps exceeds the {MaxMemory} learned relative positions");

        var query = SplitHeads(_query.forward(x));

        // Relative terms for the last memoryLength distances: row MaxMemory-1 is the previous step.
        var keyPositions = get_parameter("key_pos_embeddings")!.narrow(0, MaxMemory - memoryLength, memoryLength);
        var keyPositionBias = get_parameter("key_pos_bias")!.narrow(0, MaxMemory - memoryLength, memoryLength);

        // Content terms (q + u)·k_j, then position terms q·r_j + s_j; shapes [memory, batch, heads].
        var content = einsum("bhd,jbhd->jbh", query + get_parameter("query_pos_bias")!, keys);
        var position = einsum("bhd,jhd->jbh", query, keyPositions) + keyPositionBias.unsqueeze(1);
        var scores = (content + position) / Math.Sqrt(DimHead);
        if (visible is not null)
            // The most negative finite value, not -inf: a row with nothing visible stays finite (and its caller drops it).
            scores = scores.masked_fill(visible.logical_not().unsqueeze(-1), finfo(scores.dtype).min);

        var attention = _dropout.forward(scores.softmax(0));
        var attended = einsum("jbh,jbhd->bhd", attention, values);
        return _output.forward(attended.reshape(x.shape[0], Dim));
    }

    private Linear OwnProjection(Linear? projection) =>
        projection ?? throw new InvalidOperationException("this layer uses keys and values shared by all layers");

    /// <summary>[..., heads · dim_head] -> [..., heads, dim_head].</summary>
    private Tensor SplitHeads(Tensor x) => x.view([.. x.shape[..^1], Heads, DimHead]);
}
