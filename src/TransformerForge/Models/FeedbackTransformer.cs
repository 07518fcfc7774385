using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
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
/// <para>Tensors are <c>[batch, seq, dModel]</c>; <see cref="Step"/> takes one position <c>[batch, dModel]</c>.</para>
/// <para>
/// Parameters: <c>layers.{i}.*</c> (<see cref="FeedbackLayer"/>), <c>norm</c> (final LayerNorm),
/// <c>memory_weights</c> [nLayers + 1], and with shared keys and values <c>memory_key</c>, <c>memory_value</c>
/// (Linear dModel→dModel, no bias).
/// </para>
/// </summary>
public sealed class FeedbackTransformer : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "layers")] private readonly ModuleList<FeedbackLayer> _layers;
    [ComponentName(Name = "norm")] private readonly LayerNorm _norm;
    [ComponentName(Name = "memory_weights")] private Parameter _memoryWeights;
    [ComponentName(Name = "memory_key")] private readonly Linear? _memoryKey;
    [ComponentName(Name = "memory_value")] private readonly Linear? _memoryValue;

    /// <param name="dModel">Model width.</param>
    /// <param name="heads">Attention heads per layer.</param>
    /// <param name="dFf">Hidden width of the feed-forward networks.</param>
    /// <param name="nLayers">Number of layers.</param>
    /// <param name="sharedKeyValues">Compute keys and values once per step, shared by all layers.</param>
    /// <param name="dropout">Dropout after attention and feed-forward, on attention probabilities and the FFN hidden layer.</param>
    /// <param name="maxMemory">Longest memory (in steps) the learned relative positions cover; labml uses 4096.</param>
    public FeedbackTransformer(int dModel, int heads, int dFf, int nLayers, bool sharedKeyValues = false,
        double dropout = 0.0, int maxMemory = 4096) : base(nameof(FeedbackTransformer))
    {
        DModel = dModel;
        Heads = heads;
        HeadDim = dModel / heads;
        SharedKeyValues = sharedKeyValues;

        _layers = nn.ModuleList(Enumerable.Range(0, nLayers)
            .Select(_ => new FeedbackLayer(dModel, heads, dFf, projectsKeyValues: !sharedKeyValues, dropout, maxMemory))
            .ToArray());
        _norm = nn.LayerNorm(dModel);
        // Equal weights at the start: the memory is the mean of the embedding and all layer outputs.
        _memoryWeights = new Parameter(ones(nLayers + 1));
        if (sharedKeyValues)
        {
            _memoryKey = nn.Linear(dModel, dModel, hasBias: false);
            _memoryValue = nn.Linear(dModel, dModel, hasBias: false);
        }
        RegisterComponents();
    }

    public int DModel { get; }
    public int Heads { get; }
    public int HeadDim { get; }
    public bool SharedKeyValues { get; }
    public IReadOnlyList<FeedbackLayer> Layers => _layers.ToArray();
    public LayerNorm Norm => _norm;
    public Parameter MemoryWeights => _memoryWeights;

    /// <summary>An empty memory for <see cref="Step"/> and <see cref="Forward"/>; dispose it when done.</summary>
    public FeedbackMemory NewMemory() => new(_layers.Count, SharedKeyValues);

    /// <summary>Runs a whole sequence <c>[batch, seq, dModel]</c> from an empty memory.</summary>
    public override Tensor forward(Tensor x)
    {
        using var memory = NewMemory();
        return Forward(x, memory);
    }

    /// <summary>Runs <c>[batch, seq, dModel]</c> step by step, continuing (and extending) <paramref name="memory"/>.</summary>
    public Tensor Forward(Tensor x, FeedbackMemory memory)
    {
        var outputs = x.unbind(1).Select(position => Step(position, memory)).ToArray();
        return stack(outputs, dim: 1);
    }

    /// <summary>
    /// One step: <paramref name="x"/> <c>[batch, dModel]</c> is the next position's input; returns its output
    /// <c>[batch, dModel]</c> and appends the step's memory vector (as keys and values) to <paramref name="memory"/>.
    /// For generation, call once per new token with the same memory.
    /// </summary>
    public Tensor Step(Tensor x, FeedbackMemory memory)
    {
        if (memory.Layers != _layers.Count || memory.SharedKeyValues != SharedKeyValues)
            throw new ArgumentException("the memory was created by a different feedback transformer", nameof(memory));

        var layerOutputs = new List<Tensor>(_layers.Count + 1) { x };
        for (var i = 0; i < _layers.Count; i++)
        {
            // Every layer attends over the memory of all earlier steps; the first step has none.
            var (keys, values) = memory.Length > 0 ? memory.Read(i) : (null, null);
            x = _layers[i].forward(x, keys, values);
            layerOutputs.Add(x);
        }

        // The step's memory vector: softmax-weighted sum of the embedding and every layer's output (section 3.1).
        var memoryVector = einsum("lbd,l->bd", stack(layerOutputs), _memoryWeights.softmax(0));
        memory.Append(KeysAndValuesOf(memoryVector));

        return _norm.forward(x);
    }

    /// <summary>Projects the new memory vector once: shared by all layers, or once per layer.</summary>
    private IReadOnlyList<(Tensor Key, Tensor Value)> KeysAndValuesOf(Tensor memoryVector)
    {
        if (SharedKeyValues)
        {
            var shape = new long[] { memoryVector.shape[0], Heads, HeadDim };
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
