using System.Text.Json;
using System.Text.Json.Nodes;
using TransformerForge.Config;

namespace TransformerForge.Search;

/// <summary>
/// Archai's Transformer++ search space (<c>TfppSearchSpace</c> in archai/discrete_search/search_spaces/nlp/tfpp): a
/// width, a number of layers, and per layer its heads, their allocation among token mixers (the head-allocation
/// simplex), the feed-forward width and each mixer's own settings. Parameters and defaults are Archai's; a sample is
/// written as Archai's <c>ArchConfig.to_file</c> JSON (<c>hidden_layers</c> a <c>config_list</c> with one config per
/// layer), plus <c>vocab_size</c> and <c>n_positions</c> at the top level, the model JSON of the Transformer++ family.
/// Only the layers the sample uses, and only the settings of the mixers that get heads, are written, so two genomes
/// that build the same model write the same JSON.
/// </summary>
public sealed class TfppSpace : ISearchSpace
{
    public const string KindName = "transformer++";

    /// <summary>Archai's non-deprecated ops, in its <c>OPS</c> order.</summary>
    public static readonly IReadOnlyList<string> Ops = ["mha", "sep_conv1d", "sgconv", "sgconv3", "local_attn", "lsh_attn"];

    /// <summary>The space file's keys that list choices, with Archai's defaults.</summary>
    static readonly (string Key, int[] Default)[] ChoiceKeys =
    [
        ("embed_dims", [768]), ("inner_dims", [3072]), ("total_heads", [12]), ("total_layers", [8, 10, 12, 16, 18]),
        ("local_attn_window_sizes", [256]), ("sgconv_kernel_sizes", [256]), ("sconv1d_kernel_sizes", [256]),
        ("lsh_attn_num_hashes", [4, 8]), ("lsh_attn_bucket_size", [64]),
    ];

    /// <summary>Each op's own settings: the sub-object name in a layer, its key and the space key of its choices.</summary>
    static readonly (string Op, string Key, string Choices)[] OpSettings =
    [
        ("sgconv", "kernel_size", "sgconv_kernel_sizes"), ("sgconv3", "kernel_size", "sgconv_kernel_sizes"),
        ("sep_conv1d", "kernel_size", "sconv1d_kernel_sizes"), ("local_attn", "window_size", "local_attn_window_sizes"),
        ("lsh_attn", "num_hashes", "lsh_attn_num_hashes"), ("lsh_attn", "bucket_size", "lsh_attn_bucket_size"),
    ];

    readonly JsonObject _definition;
    readonly Dictionary<string, int[]> _choices;
    readonly IReadOnlyList<string> _ops;
    readonly int _maxLayers;
    readonly JsonObject _hfConfig;

    TfppSpace(JsonObject definition, Dictionary<string, int[]> choices, IReadOnlyList<string> ops, string backbone, bool mixedOps,
        bool homogeneous, int gridScale, JsonObject hfConfig)
    {
        _definition = definition;
        _choices = choices;
        _ops = ops;
        Backbone = backbone;
        MixedOps = mixedOps;
        Homogeneous = homogeneous;
        _hfConfig = hfConfig;
        _maxLayers = choices["total_layers"].Max();

        var allocations = mixedOps
            ? HeadAllocationSimplex.Allocations(choices["total_heads"], ops.Count, gridScale)
            : Enumerable.Range(0, ops.Count).Select(i => Enumerable.Range(0, ops.Count).Select(j => i == j ? 1.0 : 0.0).ToArray()).ToList();
        if (allocations.Count == 0)
            throw new SearchException($"space: no head allocation over {ops.Count} ops gives a whole number of heads for total_heads {string.Join(", ", choices["total_heads"])}");
        Allocations = allocations;

        var parameters = new List<SpaceParameter>
        {
            new("hidden_size", Nodes(choices["embed_dims"])),
            new("hidden_layers._repeat_times", Nodes(choices["total_layers"])),
        };
        // Archai samples every layer up to the largest depth (one shared config when homogeneous); a sample uses the first _repeat_times.
        foreach (var layer in homogeneous ? ["*"] : Enumerable.Range(0, _maxLayers).Select(i => i.ToString()))
        {
            var prefix = $"hidden_layers.{layer}.";
            parameters.Add(new(prefix + "total_heads", Nodes(choices["total_heads"])));
            parameters.Add(new(prefix + "op_allocation", allocations.Select(a => (JsonNode?)AllocationJson(ops, a)).ToList()));
            parameters.Add(new(prefix + "d_inner", Nodes(choices["inner_dims"])));
            foreach (var (op, key, list) in OpSettings)
                if (ops.Contains(op)) parameters.Add(new($"{prefix}{op}.{key}", Nodes(choices[list])));
        }
        Parameters = parameters;
    }

    public string Kind => KindName;
    public IReadOnlyList<SpaceParameter> Parameters { get; }
    public string Backbone { get; }
    public bool MixedOps { get; }
    public bool Homogeneous { get; }
    /// <summary>The head allocations a layer chooses from (shares per op, in <see cref="OpSubset"/> order).</summary>
    public IReadOnlyList<double[]> Allocations { get; }
    public IReadOnlyList<string> OpSubset => _ops;
    public int? VocabSize => _hfConfig["vocab_size"] is JsonNode v ? v.GetValue<int>() : null;
    public int? Positions => _hfConfig["n_positions"] is JsonNode v ? v.GetValue<int>() : null;
    public bool NeedsData => VocabSize is null || Positions is null;

    public static TfppSpace Parse(JsonObject definition)
    {
        var known = ChoiceKeys.Select(c => c.Key).Concat(["space", "backbone", "op_subset", "mixed_ops", "homogeneous", "head_grid_scale", "vocab_size", "n_positions", "hf_config"]).ToHashSet();
        foreach (var key in definition.Select(p => p.Key))
            if (!known.Contains(key)) throw new SearchException($"space: unknown key '{key}' (Transformer++ spaces take {string.Join(", ", known.Order())})");

        var choices = new Dictionary<string, int[]>();
        foreach (var (key, fallback) in ChoiceKeys)
            choices[key] = definition[key] is JsonNode n ? PositiveInts(n, key) : fallback;

        var backbone = definition["backbone"] is JsonNode b ? String(b, "backbone") : "codegen";
        if (backbone is not ("codegen" or "gpt2")) throw new SearchException($"space: backbone must be 'codegen' or 'gpt2' (Archai's backbones), got '{backbone}'");
        var ops = Ops.ToList();
        if (definition["op_subset"] is JsonNode subset)
        {
            var named = subset is JsonArray arr ? arr.Select((x, i) => String(x, $"op_subset[{i}]")).ToList() : throw new SearchException("space: op_subset must be a list of op names");
            foreach (var op in named)
                if (!Ops.Contains(op)) throw new SearchException($"space: op_subset: unknown op '{op}' (known: {string.Join(", ", Ops)})");
            if (named.Count == 0) throw new SearchException("space: op_subset is empty");
            ops = Ops.Where(named.Contains).ToList();   // Archai keeps OPS order whatever the subset's order
        }
        bool mixed = definition["mixed_ops"] is JsonNode m ? Bool(m, "mixed_ops") : true;
        bool homogeneous = definition["homogeneous"] is JsonNode h ? Bool(h, "homogeneous") : false;
        int grid = definition["head_grid_scale"] is JsonNode g ? PositiveInts(g, "head_grid_scale").Single() : 2;
        if (grid < 2) throw new SearchException("space: head_grid_scale must be at least 2");

        var hf = definition["hf_config"] is JsonNode hn ? (JsonObject)(hn as JsonObject ?? throw new SearchException("space: hf_config must be an object")).DeepClone() : new JsonObject();
        foreach (var key in new[] { "vocab_size", "n_positions" })
            if (definition[key] is JsonNode v)
            {
                if (hf.ContainsKey(key)) throw new SearchException($"space: {key} is given twice (top level and hf_config)");
                hf[key] = PositiveInts(v, key).Single();
            }
        foreach (var key in new[] { "vocab_size", "n_positions" })
            if (hf[key] is JsonNode v) PositiveInts(v, key).Single();
        foreach (var key in hf.Select(p => p.Key))
            if (!ArchaiArchitecture.HuggingFaceKeys.Contains(key))
                throw new SearchException($"space: hf_config.{key} is not a key Transformer++ models read (known: {string.Join(", ", ArchaiArchitecture.HuggingFaceKeys)})");

        foreach (var dim in choices["embed_dims"])
            if (!choices["total_heads"].Any(t => dim % t == 0))
                throw new SearchException($"space: embed_dims {dim} is not divisible by any of total_heads {string.Join(", ", choices["total_heads"])}");
        return new TfppSpace((JsonObject)definition.DeepClone(), choices, ops, backbone, mixed, homogeneous, grid, hf);
    }

    /// <summary>This space with <c>vocab_size</c> and <c>n_positions</c> set where the file leaves them out.</summary>
    public TfppSpace WithData(int vocabSize, int positions)
    {
        var d = (JsonObject)_definition.DeepClone();
        if (VocabSize is null) d["vocab_size"] = vocabSize;
        if (Positions is null) d["n_positions"] = positions;
        return Parse(d);
    }

    public JsonObject Build(Genome genome)
    {
        if (NeedsData) throw new InvalidOperationException("the space has no vocab_size/n_positions yet: call WithData first");
        if (genome.Count != Parameters.Count) throw new ArgumentException($"genome has {genome.Count} values, the space {Parameters.Count} parameters");
        int V(string name) => genome.Value(Parameters, name)!.GetValue<int>();

        int hidden = V("hidden_size");
        int depth = V("hidden_layers._repeat_times");
        var configs = new JsonObject();
        for (int i = 0; i < depth; i++)
        {
            var prefix = $"hidden_layers.{(Homogeneous ? "*" : i.ToString())}.";
            int heads = V(prefix + "total_heads");
            if (hidden % heads != 0) throw new InvalidCandidateException($"layer {i}: hidden_size {hidden} is not divisible by total_heads {heads}");
            var allocation = (JsonArray)genome.Value(Parameters, prefix + "op_allocation")!;
            var shares = allocation.Select(pair => (Op: pair![0]!.GetValue<string>(), Share: pair[1]!.GetValue<double>())).ToList();
            var opHeads = shares.Select(s => HeadAllocationSimplex.Heads(heads, s.Share)).ToList();
            if (opHeads.Sum() != heads)
                throw new InvalidCandidateException($"layer {i}: allocation {allocation.ToJsonString()} gives {opHeads.Sum()} heads, not total_heads {heads}");

            var layer = new JsonObject
            {
                ["total_heads"] = heads,
                ["op_allocation"] = allocation.DeepClone(),
                ["d_inner"] = V(prefix + "d_inner"),
            };
            for (int k = 0; k < shares.Count; k++)
            {
                if (opHeads[k] == 0) continue;
                var settings = OpSettings.Where(s => s.Op == shares[k].Op).ToList();
                if (settings.Count == 0) continue;   // mha reads no settings of its own
                var o = new JsonObject();
                foreach (var (op, key, _) in settings) o[key] = V($"{prefix}{op}.{key}");
                layer[shares[k].Op] = o;
            }
            configs[i.ToString()] = layer;
        }

        var sample = new JsonObject
        {
            ["backbone"] = Backbone,
            ["hidden_size"] = hidden,
            ["hidden_layers"] = new JsonObject
            {
                ["_config_type"] = "config_list",
                ["_share_arch"] = Homogeneous,
                ["_repeat_times"] = depth,
                ["_configs"] = configs,
            },
        };
        foreach (var (k, v) in _hfConfig) sample[k] = v?.DeepClone();
        Validate(sample);
        return sample;
    }

    /// <summary>
    /// Reads the sample with the model loader that <c>tforge train --config</c> uses, so an architecture that would not
    /// load (e.g. an SGConv kernel of twice n_positions, LSH attention on odd heads) is never trained: it is an invalid
    /// candidate naming the key.
    /// </summary>
    static void Validate(JsonObject sample)
    {
        try
        {
            ModelConfig.Parse(sample.ToJsonString());
        }
        catch (ConfigException e)
        {
            throw new InvalidCandidateException(e.Message);
        }
    }

    public JsonObject ToJson()
    {
        var d = (JsonObject)_definition.DeepClone();
        d["space"] = KindName;
        return d;
    }

    /// <summary>An allocation as Archai writes it: a list of [op, share] pairs over the op subset.</summary>
    static JsonArray AllocationJson(IReadOnlyList<string> ops, double[] shares) =>
        new(ops.Select((op, i) => (JsonNode?)new JsonArray(op, shares[i])).ToArray());

    static List<JsonNode?> Nodes(IEnumerable<int> values) => values.Select(v => (JsonNode?)JsonValue.Create(v)).ToList();

    static int[] PositiveInts(JsonNode node, string key)
    {
        var items = node is JsonArray a ? a.ToList() : [node];
        if (items.Count == 0) throw new SearchException($"space: {key} is an empty list");
        var result = new int[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            var n = items[i];
            if (n is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue<int>(out var x) && !(v.TryGetValue<double>(out var d) && d == Math.Floor(d) && (x = (int)d) == d))
                throw new SearchException($"space: {key} must be a positive integer or a list of them, got {n?.ToJsonString() ?? "null"}");
            if (x <= 0) throw new SearchException($"space: {key} must be positive, got {x}");
            if (result.Take(i).Contains(x)) throw new SearchException($"space: {key} lists {x} twice");
            result[i] = x;
        }
        return result;
    }

    static string String(JsonNode? node, string key) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw new SearchException($"space: {key} must be a string");

    static bool Bool(JsonNode node, string key) => node.GetValueKind() switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new SearchException($"space: {key} must be true or false"),
    };
}
