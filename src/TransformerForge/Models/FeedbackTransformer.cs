using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>
/// Feedback Transformer (Fan et al. 2020, "Addressing Some Limitations of Transformers with Feedback Memory"):
/// tokens are processed one step at a time, and every layer at step t attends over one memory vector per earlier
/// step, the softmax-weighted sum of that step's input embedding and all its layer outputs (section 3.1). Higher
/// layers' past representations thus reach lower layers of later steps.
/// <para>
/// Two variants, following labml's implementations: the original, where each layer projects the memory to its own
/// keys and values, and <c>sharedKeyValues</c>, where keys and values are projected once per step and shared by all
/// layers (the paper's section 3.2 shares these projections across layers). Either way a step projects only its new
/// memory vector and appends it; earlier steps are never recomputed.
/// </para>
/// <para>Tensors are <c>[batch, seq, dim]</c>; <see cref="Step"/> takes one position <c>[batch, dim]</c>.</para>
/// <para>
/// Parameters: <c>layers.{i}.*</c> (<see cref="FeedbackLayer"/>), <c>norm</c> (final LayerNorm),
/// <c>memory_weights</c> [depth + 1], and with shared keys and values <c>memory_key</c>, <c>memory_value</c>
/// (Linear dim→dim, no bias).
/// </para>
/// </summary>
public sealed class FeedbackTransformer : ForgeModule<Tensor, Tensor>
{
    private readonly FeedbackLayer[] _layers;
    private readonly LayerNorm _norm;
    private readonly Linear? _memoryKey, _memoryValue;

    /// <param name="dim">Model width (labml's d_model).</param>
    /// <param name="heads">Attention heads per layer, of dim / heads features each.</param>
    /// <param name="ffInnerDim">Hidden width of the feed-forward networks (labml's d_ff).</param>
    /// <param name="depth">Number of layers (labml's n_layers).</param>
    /// <param name="sharedKeyValues">Compute keys and values once per step, shared by all layers.</param>
    /// <param name="dropout">Dropout after attention and feed-forward, on attention probabilities and the FFN hidden layer.</param>
    /// <param name="maxMemory">Longest memory (in steps) the learned relative positions cover; labml uses 4096.</param>
    public FeedbackTransformer(int dim, int heads, int ffInnerDim, int depth, bool sharedKeyValues = false,
        double dropout = 0.0, int maxMemory = 4096) : base(nameof(FeedbackTransformer))
    {
        Dim = dim;
        Heads = heads;
        DimHead = dim / heads;
        SharedKeyValues = sharedKeyValues;
        MaxMemory = maxMemory;

        _layers = Enumerable.Range(0, depth)
            .Select(_ => new FeedbackLayer(dim, heads, ffInnerDim, projectsKeyValues: !sharedKeyValues, dropout, maxMemory))
            .ToArray();
        _norm = nn.LayerNorm(dim);
        register_module("layers", nn.ModuleList(_layers));
        register_module("norm", _norm);
        // Equal weights at the start: the memory is the mean of the embedding and all layer outputs.
        register_parameter("memory_weights", new Parameter(ones(depth + 1)));
        if (sharedKeyValues)
        {
            _memoryKey = nn.Linear(dim, dim, hasBias: false);
            _memoryValue = nn.Linear(dim, dim, hasBias: false);
            register_module("memory_key", _memoryKey);
            register_module("memory_value", _memoryValue);
        }
    }

    public int Dim { get; }
    public int Heads { get; }
    public int DimHead { get; }
    public bool SharedKeyValues { get; }
    public int MaxMemory { get; }
    public IReadOnlyList<FeedbackLayer> Layers => _layers;
    public LayerNorm Norm => _norm;
    public Parameter MemoryWeights => get_parameter("memory_weights")!;

    /// <summary>An empty memory for <see cref="Step"/> and <see cref="Forward"/>; dispose it when done.</summary>
    public FeedbackMemory NewMemory() => new(_layers.Length, SharedKeyValues);

    /// <summary>Runs a whole sequence <c>[batch, seq, dim]</c> from an empty memory.</summary>
    public override Tensor forward(Tensor x)
    {
        using var memory = NewMemory();
        return Forward(x, memory);
    }

    /// <summary>
    /// Runs <c>[batch, seq, dim]</c> step by step, continuing (and extending) <paramref name="memory"/>.
    /// <paramref name="mask"/> <c>[batch, seq]</c> marks real tokens (true) and padding (false); padded steps are
    /// hidden from later ones, which for left padding gives each sequence exactly its unpadded outputs.
    /// </summary>
    public Tensor Forward(Tensor x, FeedbackMemory memory, Tensor? mask = null)
    {
        var positions = x.unbind(1);
        var masks = mask?.unbind(1);
        var outputs = positions.Select((position, t) => Step(position, memory, masks?[t])).ToArray();
        return stack(outputs, dim: 1);
    }

    /// <summary>
    /// One step: <paramref name="x"/> <c>[batch, dim]</c> is the next position's input; returns its output
    /// <c>[batch, dim]</c> and appends the step's memory vector (as keys and values) to <paramref name="memory"/>.
    /// <paramref name="mask"/> <c>[batch]</c>: false where this position is padding. For generation, call once per
    /// new token with the same memory.
    /// </summary>
    public Tensor Step(Tensor x, FeedbackMemory memory, Tensor? mask = null)
    {
        if (memory.Layers != _layers.Length || memory.SharedKeyValues != SharedKeyValues)
            throw new ArgumentException("the memory was created by a different feedback transformer", nameof(memory));

        var layerOutputs = new List<Tensor>(_layers.Length + 1) { x };
        for (var i = 0; i < _layers.Length; i++)
        {
            // Every layer attends over the memory of all earlier steps; the first step has none.
            var (keys, values, visible) = memory.Length > 0 ? memory.Read(i) : (null, null, null);
            x = _layers[i].Forward(x, keys, values, visible);
            layerOutputs.Add(x);
        }

        // The step's memory vector: softmax-weighted sum of the embedding and every layer's output (section 3.1).
        var memoryVector = einsum("lbd,l->bd", stack(layerOutputs), MemoryWeights.softmax(0));
        memory.Append(KeysAndValuesOf(memoryVector), mask);

        return _norm.forward(x);
    }

    /// <summary>Projects the new memory vector once: shared by all layers, or once per layer.</summary>
    private IReadOnlyList<(Tensor Key, Tensor Value)> KeysAndValuesOf(Tensor memoryVector)
    {
        if (SharedKeyValues)
        {
            var shape = new long[] { memoryVector.shape[0], Heads, DimHead };
            return [(_memoryKey!.forward(memoryVector).view(shape), _memoryValue!.forward(memoryVector).view(shape))];
        }
        return _layers
            .Select(layer => (layer.Attention.ProjectKey(memoryVector), layer.Attention.ProjectValue(memoryVector)))
            .ToArray();
    }

    /// <summary>
    /// Maps a labml <c>FeedbackTransformer</c> / <c>FeedbackTransformerKV</c> state_dict name to this module's:
    /// <c>weights</c> → <c>memory_weights</c>; the KV variant's top-level <c>key.linear.weight</c>,
    /// <c>value.linear.weight</c> → <c>memory_key.weight</c>, <c>memory_value.weight</c>; every other name loses its
    /// <c>.linear</c> segment (<c>layers.0.attn.query.linear.weight</c> → <c>layers.0.attn.query.weight</c>).
    /// </summary>
    public static string FromLabmlName(string labmlName)
    {
        if (labmlName == "weights") return "memory_weights";
        var name = labmlName.Replace(".linear.", ".", StringComparison.Ordinal);
        return name.StartsWith("key.", StringComparison.Ordinal) || name.StartsWith("value.", StringComparison.Ordinal)
            ? "memory_" + name
            : name;
    }
}
