using System.Text.Json;
using TransformerForge.Modules.TokenMixers;

namespace TransformerForge.Config;

/// <summary>
/// Reads the JSON that Archai's <c>ArchConfig.to_file</c> writes for a Transformer++ architecture (tfpp's
/// <c>TfppSearchSpace</c>), with the Hugging Face keyword arguments Archai's <c>LanguageModel</c> takes added at the top
/// level, into a <see cref="TransformerPlusPlusConfig"/>:
/// <code>
/// { "backbone": "codegen", "hidden_size": 256, "vocab_size": 50257, "n_positions": 1024,
///   "hidden_layers": { "_config_type": "config_list", "_share_arch": false, "_repeat_times": 2,
///     "_configs": { "0": { "total_heads": 4, "op_allocation": [["mha", 0.5], ["sgconv", 0.5]], "d_inner": 1024,
///                          "sgconv": {"kernel_size": 256}, "sgconv3": {...}, "sep_conv1d": {...}, "local_attn": {...}, "lsh_attn": {...} },
///                   "1": { ... } } } }
/// </code>
/// As in Archai: only the first <c>_repeat_times</c> layer configs are used; op i gets round(total_heads · share_i)
/// heads (half to even) and ops with none are left out; the per-op objects of ops a layer does not use are ignored.
/// Top-level Hugging Face keys: <c>vocab_size</c> (required), <c>n_positions</c> (or <c>max_position_embeddings</c>;
/// default 2048 for codegen, 1024 for gpt2, their configs' defaults), <c>rotary_dim</c>, <c>embd_pdrop</c>,
/// <c>resid_pdrop</c> (default 0 for codegen, 0.1 for gpt2), <c>layer_norm_epsilon</c>, and <c>use_cache</c> (which
/// <c>TfppSearchSpace</c> passes; accepted and ignored: every model here can decode cached). Errors name the key's path.
/// </summary>
public static class ArchaiArchitecture
{
    /// <summary>Whether <paramref name="obj"/> looks like an Archai architecture (no <c>type</c>, a <c>hidden_layers</c> list).</summary>
    public static bool Matches(JsonElement obj) =>
        obj.ValueKind == JsonValueKind.Object && !obj.TryGetProperty("type", out _) && obj.TryGetProperty("hidden_layers", out _);

    /// <summary>Per-op arch config keys, by op (Archai's <c>requires_extra_config</c> ops).</summary>
    static readonly Dictionary<string, string[]> OpKeys = new()
    {
        ["sep_conv1d"] = ["kernel_size"],
        ["sgconv"] = ["kernel_size"],
        ["sgconv3"] = ["kernel_size"],
        ["local_attn"] = ["window_size"],
        ["lsh_attn"] = ["num_hashes", "bucket_size", "num_buckets"],
    };

    public static TransformerPlusPlusConfig Read(JsonElement obj)
    {
        var seen = new HashSet<string>();
        foreach (var p in obj.EnumerateObject())
        {
            if (!seen.Add(p.Name)) throw new ConfigException(p.Name, "given twice");
            if (p.Name == "_config_type" ? !IsString(p.Value, "default") : !TopKeys.Contains(p.Name))
                throw new ConfigException(p.Name, $"unknown key of an Archai Transformer++ architecture (known: {string.Join(", ", TopKeys)})");
            if (p.Name == "use_cache" && p.Value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                throw new ConfigException(p.Name, "expected true or false");
        }

        var backbone = obj.TryGetProperty("backbone", out var b) ? String(b, "backbone") : TransformerPlusPlusConfig.CodeGen;
        if (!TransformerPlusPlusConfig.Blocks.Contains(backbone))
            throw new ConfigException("backbone", $"expected one of {string.Join(", ", TransformerPlusPlusConfig.Blocks)}, got '{backbone}'");
        bool gpt2 = backbone == TransformerPlusPlusConfig.Gpt2;
        if (obj.TryGetProperty("n_positions", out _) && obj.TryGetProperty("max_position_embeddings", out _))
            throw new ConfigException("max_position_embeddings", "given together with n_positions (its Hugging Face alias)");

        var config = new TransformerPlusPlusConfig
        {
            Block = backbone,
            Dim = Int(obj, "hidden_size"),
            NumTokens = Int(obj, "vocab_size"),
            MaxSeqLen = OptInt(obj, "n_positions") ?? OptInt(obj, "max_position_embeddings") ?? (gpt2 ? 1024 : 2048),
            RotaryDim = OptInt(obj, "rotary_dim"),
            EmbDropout = OptDouble(obj, "embd_pdrop") ?? (gpt2 ? 0.1 : 0.0),
            ResidDropout = OptDouble(obj, "resid_pdrop") ?? (gpt2 ? 0.1 : 0.0),
            LayerNormEps = OptDouble(obj, "layer_norm_epsilon") ?? 1e-5,
        };
        config = config with { Layers = ReadLayers(obj.GetProperty("hidden_layers"), "hidden_layers") };
        try
        {
            config.Validate(perLayerKeys: true);
        }
        catch (ConfigException e)
        {
            // Name the key as the Archai file spells it.
            var detail = e.Message.StartsWith($"config key '{e.Key}': ", StringComparison.Ordinal) ? e.Message[($"config key '{e.Key}': ").Length..] : e.Message;
            throw new ConfigException(ArchaiKey(e.Key), detail);
        }
        return config;
    }

    /// <summary>The Archai path of a native key (<c>layers[2].sgconv_kernel_size</c> → <c>hidden_layers._configs.2.sgconv.kernel_size</c>).</summary>
    static string ArchaiKey(string key)
    {
        var match = System.Text.RegularExpressions.Regex.Match(key, @"^layers\[(\d+)\]\.([a-z0-9_]+)(\..*)?$");
        if (!match.Success) return ModelKeys.GetValueOrDefault(key, key);
        var local = match.Groups[2].Value switch
        {
            "heads" => "total_heads",
            "ff_inner_dim" => "d_inner",
            "mixers" => "op_allocation",
            "sep_conv1d_kernel_size" => "sep_conv1d.kernel_size",
            "sgconv_kernel_size" => "sgconv.kernel_size",
            "sgconv3_kernel_size" => "sgconv3.kernel_size",
            "local_attn_window_size" => "local_attn.window_size",
            "lsh_num_hashes" => "lsh_attn.num_hashes",
            "lsh_bucket_size" => "lsh_attn.bucket_size",
            "lsh_num_buckets" => "lsh_attn.num_buckets",
            var other => other,
        };
        return $"hidden_layers._configs.{match.Groups[1].Value}.{local}";
    }

    static readonly Dictionary<string, string> ModelKeys = new()
    {
        ["num_tokens"] = "vocab_size", ["max_seq_len"] = "n_positions", ["dim"] = "hidden_size", ["block"] = "backbone",
        ["emb_dropout"] = "embd_pdrop", ["resid_dropout"] = "resid_pdrop", ["layer_norm_eps"] = "layer_norm_epsilon",
    };

    /// <summary>The Hugging Face keyword arguments read at the top level, beside the architecture's own keys.</summary>
    public static readonly IReadOnlyList<string> HuggingFaceKeys =
        ["vocab_size", "n_positions", "max_position_embeddings", "rotary_dim", "embd_pdrop", "resid_pdrop", "layer_norm_epsilon", "use_cache"];

    static readonly string[] TopKeys = ["backbone", "hidden_size", "hidden_layers", .. HuggingFaceKeys];

    static List<TransformerPlusPlusLayer> ReadLayers(JsonElement list, string path)
    {
        if (list.ValueKind != JsonValueKind.Object)
            throw new ConfigException(path, $"expected Archai's config_list object, got {OptionTable<TransformerPlusPlusConfig>.Describe(list)}");
        foreach (var p in list.EnumerateObject())
            if (p.Name is not ("_config_type" or "_share_arch" or "_repeat_times" or "_configs"))
                throw new ConfigException($"{path}.{p.Name}", "unknown key of a config_list (known: _config_type, _share_arch, _repeat_times, _configs)");
        if (!list.TryGetProperty("_config_type", out var type) || !IsString(type, "config_list"))
            throw new ConfigException($"{path}._config_type", "must be \"config_list\"");
        if (list.TryGetProperty("_share_arch", out var share) && share.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw new ConfigException($"{path}._share_arch", "expected true or false");
        var repeat = Int(list, "_repeat_times", path + ".");
        if (repeat < 1) throw new ConfigException($"{path}._repeat_times", $"must be at least 1, got {repeat}");
        if (!list.TryGetProperty("_configs", out var configs) || configs.ValueKind != JsonValueKind.Object)
            throw new ConfigException($"{path}._configs", "is required: an object of layer configs \"0\", \"1\", ...");

        var layers = new List<TransformerPlusPlusLayer>();
        for (int i = 0; i < repeat; i++)
        {
            var key = i.ToString();
            if (!configs.TryGetProperty(key, out var layer))
                throw new ConfigException($"{path}._configs", $"has no layer \"{key}\" but _repeat_times is {repeat}");
            layers.Add(ReadLayer(layer, $"{path}._configs.{key}"));
        }
        return layers;
    }

    static TransformerPlusPlusLayer ReadLayer(JsonElement layer, string path)
    {
        if (layer.ValueKind != JsonValueKind.Object) throw new ConfigException(path, $"expected an object, got {OptionTable<TransformerPlusPlusConfig>.Describe(layer)}");
        foreach (var p in layer.EnumerateObject())
            if (p.Name is not ("total_heads" or "op_allocation" or "d_inner" or "_config_type") && !OpKeys.ContainsKey(p.Name))
                throw new ConfigException($"{path}.{p.Name}", $"unknown key of a Transformer++ layer (known: total_heads, op_allocation, d_inner, {string.Join(", ", OpKeys.Keys)})");

        var heads = Int(layer, "total_heads", path + ".");
        var result = new TransformerPlusPlusLayer { Heads = heads, FfInnerDim = Int(layer, "d_inner", path + ".") };
        var allocationPath = path + ".op_allocation";
        if (!layer.TryGetProperty("op_allocation", out var allocation)) throw new ConfigException(allocationPath, "is required");
        if (allocation.ValueKind != JsonValueKind.Array)
            throw new ConfigException(allocationPath, $"expected a list of [op, share] pairs, got {OptionTable<TransformerPlusPlusConfig>.Describe(allocation)}");

        var shares = new List<(string Op, double Share)>();
        int index = 0;
        foreach (var pair in allocation.EnumerateArray())
        {
            var at = $"{allocationPath}[{index++}]";
            if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2 || pair[0].ValueKind != JsonValueKind.String || pair[1].ValueKind != JsonValueKind.Number)
                throw new ConfigException(at, "expected an [op, share] pair such as [\"mha\", 0.5]");
            var op = pair[0].GetString()!;
            if (!TokenMixerFactory.OpNames.Contains(op))
                throw new ConfigException(at, $"unknown op '{op}' (known: {string.Join(", ", TokenMixerFactory.OpNames)})");
            if (shares.Any(s => s.Op == op)) throw new ConfigException(at, $"op '{op}' is allocated twice");
            var share = pair[1].GetDouble();
            if (!(share >= 0) || double.IsInfinity(share)) throw new ConfigException(at, $"share must be a number ≥ 0, got {share}");
            shares.Add((op, share));
        }
        var allocated = MixedAttentionBlock.HeadsFromShares(shares, heads);
        var total = allocated.Sum(a => a.Heads);
        if (total != heads)
            throw new ConfigException(allocationPath, $"shares × total_heads {heads} round to {total} heads ({string.Join(", ", allocated.Select(a => $"{a.Op} {a.Heads}"))}), " +
                $"not {heads}: Archai's op_allocation values are fractions of total_heads that add up to 1");
        var mixers = allocated.Where(a => a.Heads > 0).Select(a => new MixerHeads(a.Op, a.Heads)).ToList();
        result = result with { Mixers = mixers };

        // Per-op sizes: checked wherever given, kept for the ops the layer uses.
        foreach (var (op, keys) in OpKeys)
        {
            if (!layer.TryGetProperty(op, out var arch)) continue;
            var opPath = $"{path}.{op}";
            if (arch.ValueKind != JsonValueKind.Object) throw new ConfigException(opPath, $"expected an object, got {OptionTable<TransformerPlusPlusConfig>.Describe(arch)}");
            foreach (var p in arch.EnumerateObject())
                if (!keys.Contains(p.Name) && !(p.Name == "_config_type" && IsString(p.Value, "default")))
                    throw new ConfigException($"{opPath}.{p.Name}", $"unknown key of {op}'s arch config (known: {string.Join(", ", keys)})");
            if (!mixers.Any(m => m.Op == op)) continue;
            result = op switch
            {
                "sep_conv1d" => result with { SepConv1dKernelSize = Int(arch, "kernel_size", opPath + ".") },
                "sgconv" => result with { SGConvKernelSize = Int(arch, "kernel_size", opPath + ".") },
                "sgconv3" => result with { SGConv3KernelSize = Int(arch, "kernel_size", opPath + ".") },
                "local_attn" => result with { LocalAttnWindowSize = Int(arch, "window_size", opPath + ".") },
                "lsh_attn" => result with
                {
                    LshNumHashes = Int(arch, "num_hashes", opPath + "."), LshBucketSize = Int(arch, "bucket_size", opPath + "."),
                    LshNumBuckets = OptInt(arch, "num_buckets", opPath + "."),
                },
                _ => result,
            };
        }
        foreach (var m in mixers)
            if (OpKeys.ContainsKey(m.Op) && !layer.TryGetProperty(m.Op, out _))
                throw new ConfigException($"{path}.{m.Op}", $"is required: op_allocation gives {m.Op} {m.Heads} heads, and {m.Op} needs its arch config ({string.Join(", ", OpKeys[m.Op].Where(k => k != "num_buckets"))})");
        return result;
    }

    static bool IsString(JsonElement e, string value) => e.ValueKind == JsonValueKind.String && e.GetString() == value;

    static string String(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new ConfigException(path, $"expected a string, got {OptionTable<TransformerPlusPlusConfig>.Describe(e)}");

    static int Int(JsonElement obj, string key, string prefix = "") =>
        obj.TryGetProperty(key, out var v) ? OptionTable<TransformerPlusPlusConfig>.ReadInt(v, prefix + key) : throw new ConfigException(prefix + key, "is required");

    static int? OptInt(JsonElement obj, string key, string prefix = "") =>
        obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? OptionTable<TransformerPlusPlusConfig>.ReadInt(v, prefix + key) : null;

    static double? OptDouble(JsonElement obj, string key) =>
        obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? OptionTable<TransformerPlusPlusConfig>.ReadDouble(v, key) : null;
}
