using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules;

/// <summary>
/// Multi-DConv-Head Attention (MDHA) from Primer (So et al. 2021, "Primer: Searching for Efficient Transformers for
/// Language Modeling", section 3): multi-head attention whose query, key and value projections are each followed by
/// a depth-wise causal convolution of width 3 along the sequence, so each projected position mixes in the two
/// positions before it.
/// <para>Tensors are <c>[batch, seq, dModel]</c>.</para>
/// <para>
/// Parameters: <c>query</c>, <c>key</c>, <c>value</c>, <c>output</c> (Linear dModel→dModel) and <c>query_conv</c>,
/// <c>key_conv</c>, <c>value_conv</c> (<see cref="CausalDepthwiseConv1d"/>: d_k channels when the kernels are
/// <see cref="DConvKernelLayout.SharedByHeads"/>, dModel when <see cref="DConvKernelLayout.PerChannel"/>).
/// </para>
/// </summary>
public sealed class MultiDConvHeadAttention : ForgeModule<Tensor, Tensor>
{
    private readonly Linear _query, _key, _value, _output;
    private readonly CausalDepthwiseConv1d _queryConv, _keyConv, _valueConv;

    /// <param name="dModel">Model width; split into <paramref name="heads"/> heads of d_k = dModel / heads.</param>
    /// <param name="heads">Number of attention heads.</param>
    /// <param name="kernelLayout">Kernels shared by the heads (labml) or one per projected channel (the paper).</param>
    /// <param name="dropout">Dropout on the attention probabilities (training only).</param>
    /// <param name="kernelSize">Width of the causal convolution; Primer uses 3.</param>
    /// <param name="bias">Whether the query and key projections have a bias (the value projection always has one).</param>
    public MultiDConvHeadAttention(
        int dModel,
        int heads,
        DConvKernelLayout kernelLayout = DConvKernelLayout.SharedByHeads,
        double dropout = 0.0,
        int kernelSize = 3,
        bool bias = true) : base(nameof(MultiDConvHeadAttention))
    {
        if (dModel % heads != 0) throw new ArgumentException($"dModel {dModel} is not divisible by {heads} heads");
        DModel = dModel;
        Heads = heads;
        HeadDim = dModel / heads;
        KernelLayout = kernelLayout;
        Dropout = dropout;

        var convChannels = kernelLayout == DConvKernelLayout.SharedByHeads ? HeadDim : dModel;
        _query = nn.Linear(dModel, dModel, hasBias: bias);
        _key = nn.Linear(dModel, dModel, hasBias: bias);
        _value = nn.Linear(dModel, dModel, hasBias: true);
        _queryConv = new CausalDepthwiseConv1d(convChannels, kernelSize);
        _keyConv = new CausalDepthwiseConv1d(convChannels, kernelSize);
        _valueConv = new CausalDepthwiseConv1d(convChannels, kernelSize);
        _output = nn.Linear(dModel, dModel);
        register_module("query", _query);
        register_module("key", _key);
        register_module("value", _value);
        register_module("query_conv", _queryConv);
        register_module("key_conv", _keyConv);
        register_module("value_conv", _valueConv);
        register_module("output", _output);
    }

    public int DModel { get; }
    public int Heads { get; }
    public int HeadDim { get; }
    public DConvKernelLayout KernelLayout { get; }
    public double Dropout { get; }

    /// <summary>
    /// Attention of <paramref name="query"/> <c>[batch, seqQ, dModel]</c> over <paramref name="key"/> and
    /// <paramref name="value"/> <c>[batch, seqK, dModel]</c>. <paramref name="mask"/> is boolean, true where a query
    /// may attend to a key, broadcastable to <c>[batch, heads, seqQ, seqK]</c> (e.g. <c>[seqQ, seqK]</c>); null
    /// attends everywhere. Use <see cref="CausalMask"/> for language modelling.
    /// </summary>
    public Tensor Forward(Tensor query, Tensor key, Tensor value, Tensor? mask = null)
    {
        // Primer's change to multi-head attention: a causal depth-wise convolution after each projection.
        var q = SplitHeads(_queryConv.forward(_query.forward(query)));
        var k = SplitHeads(_keyConv.forward(_key.forward(key)));
        var v = SplitHeads(_valueConv.forward(_value.forward(value)));

        var attended = Attend(q, k, v, mask);
        return _output.forward(MergeHeads(attended));
    }

    /// <summary>Causal self-attention over a whole sequence <c>[batch, seq, dModel]</c>.</summary>
    public override Tensor forward(Tensor x) => Forward(x, x, x, CausalMask(x.shape[1], 0, x.device));

    /// <summary>
    /// Incremental causal self-attention: <paramref name="x"/> holds the next positions <c>[batch, seq, dModel]</c>
    /// (one or more), <paramref name="cache"/> what came before (null at the start). Returns the outputs for the new
    /// positions and the cache extended by them; the concatenated outputs equal <see cref="forward"/> over
    /// the whole sequence.
    /// </summary>
    public (Tensor Output, MultiDConvHeadAttentionCache Cache) ForwardCached(Tensor x, MultiDConvHeadAttentionCache? cache)
    {
        var (q, queryHistory) = _queryConv.Forward(_query.forward(x), cache?.QueryHistory);
        var (k, keyHistory) = _keyConv.Forward(_key.forward(x), cache?.KeyHistory);
        var (v, valueHistory) = _valueConv.Forward(_value.forward(x), cache?.ValueHistory);

        // Keys and values of earlier positions are final (the convolution is causal), so they are reused as they are.
        var keys = SplitHeads(k);
        var values = SplitHeads(v);
        if (cache is not null)
        {
            keys = cat([cache.Keys, keys], dim: 2);
            values = cat([cache.Values, values], dim: 2);
        }

        var past = cache?.Length ?? 0;
        var attended = Attend(SplitHeads(q), keys, values, CausalMask(x.shape[1], past, x.device));
        var output = _output.forward(MergeHeads(attended));
        return (output, new MultiDConvHeadAttentionCache(queryHistory, keyHistory, valueHistory, keys, values));
    }

    /// <summary>
    /// Boolean mask <c>[queries, past + queries]</c> for queries at positions past .. past+queries-1: true where the
    /// key position is not after the query position.
    /// </summary>
    public static Tensor CausalMask(long queries, long past, Device? device = null) =>
        ones(queries, past + queries, dtype: ScalarType.Bool, device: device).tril(past);

    private Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? mask) =>
        // softmax(q·kᵀ / sqrt(d_k)) · v, dropout on the probabilities while training.
        nn.functional.scaled_dot_product_attention(q, k, v, mask, p: training ? Dropout : 0.0);

    /// <summary>[batch, seq, heads · d_k] -> [batch, heads, seq, d_k].</summary>
    private Tensor SplitHeads(Tensor x) => x.view(x.shape[0], x.shape[1], Heads, HeadDim).transpose(1, 2);

    /// <summary>[batch, heads, seq, d_k] -> [batch, seq, heads · d_k].</summary>
    private Tensor MergeHeads(Tensor x) => x.transpose(1, 2).reshape(x.shape[0], x.shape[2], DModel);

    /// <summary>
    /// Maps a labml <c>MultiDConvHeadAttention</c> state_dict name to this module's name:
    /// <c>{query,key,value}.0.linear.*</c> → <c>{query,key,value}.*</c>,
    /// <c>{query,key,value}.1.conv.*</c> → <c>{query,key,value}_conv.*</c>, <c>output.*</c> unchanged.
    /// </summary>
    public static string FromLabmlName(string labmlName)
    {
        foreach (var projection in new[] { "query", "key", "value" })
        {
            if (labmlName.StartsWith($"{projection}.0.linear.", StringComparison.Ordinal))
                return projection + labmlName[$"{projection}.0.linear".Length..];
            if (labmlName.StartsWith($"{projection}.1.conv.", StringComparison.Ordinal))
                return $"{projection}_conv" + labmlName[$"{projection}.1.conv".Length..];
        }
        return labmlName;
    }
}
