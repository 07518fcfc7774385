using System.Text.Json;
using System.Text.Json.Nodes;
using TransformerForge.Modules.TokenMixers;

namespace TransformerForge.Config;

/// <summary>
/// A Transformer++ language model (Archai's tfpp search space): token embedding, then layers whose heads are shared
/// out among token mixers (<c>mha</c>, <c>sep_conv1d</c>, <c>sgconv</c>, <c>sgconv3</c>, <c>local_attn</c>,
/// <c>lsh_attn</c>) and a GELU feed-forward, then a final LayerNorm and the logits. <c>block</c> picks Archai's layout:
/// <c>codegen</c> (mixers and feed-forward in parallel from one norm; no position embedding) or <c>gpt2</c> (one after
/// the other, learned absolute positions). Layers may differ.
/// <para>
/// JSON (keys in x-transformers' style): <c>num_tokens</c>, <c>max_seq_len</c>, <c>dim</c>, <c>depth</c>, the layer
/// keys (<c>heads</c>, <c>ff_inner_dim</c>, <c>mixers</c>: heads per mixer in order, and the mixers' sizes
/// <c>sep_conv1d_kernel_size</c>, <c>sgconv_kernel_size</c>, <c>sgconv3_kernel_size</c>, <c>local_attn_window_size</c>,
/// <c>lsh_num_hashes</c>, <c>lsh_bucket_size</c>, <c>lsh_num_buckets</c>) for every layer, and <c>layers</c>: one object
/// per layer overriding any of them. Archai's own <c>ArchConfig</c> files load too (<see cref="ArchaiArchitecture"/>).
/// </para>
/// </summary>
public sealed record TransformerPlusPlusConfig : ModelConfig
{
    public const string TypeName = "TransformerPlusPlus";
    public const string CodeGen = "codegen", Gpt2 = "gpt2";
    public static readonly IReadOnlyList<string> Blocks = [CodeGen, Gpt2];

    public override string Type => TypeName;
    public int NumTokens { get; init; }
    public int MaxSeqLen { get; init; }
    public int Dim { get; init; }
    /// <summary><c>codegen</c> or <c>gpt2</c>: Archai's two block layouts.</summary>
    public string Block { get; init; } = CodeGen;
    /// <summary>mha's rotary features per head; null: Archai's default for the block (CodeGen 64, GPT-2 none). Capped
    /// at each layer's head size (rounded down to even), since layers' heads differ.</summary>
    public int? RotaryDim { get; init; }
    /// <summary>Dropout on the embeddings (Hugging Face's <c>embd_pdrop</c>).</summary>
    public double EmbDropout { get; init; }
    /// <summary>Dropout on each branch output before its residual add (Hugging Face's <c>resid_pdrop</c>).</summary>
    public double ResidDropout { get; init; }
    public double LayerNormEps { get; init; } = 1e-5;
    /// <summary>Seed of LSH attention's evaluation rotations (layer i uses seed + i).</summary>
    public int LshHashSeed { get; init; }
    public IReadOnlyList<TransformerPlusPlusLayer> Layers { get; init; } = [];

    public int Depth => Layers.Count;

    /// <summary>The rotary features of layer <paramref name="layer"/>'s mha heads.</summary>
    public int RotaryDimOf(int layer)
    {
        var dimHead = Dim / Layers[layer].Heads;
        var wanted = RotaryDim ?? (Block == CodeGen ? 64 : 0);
        return Math.Min(wanted, dimHead) / 2 * 2;
    }

    /// <summary>What layer <paramref name="layer"/>'s mixers are built from.</summary>
    public TokenMixerOptions MixerOptions(int layer)
    {
        var l = Layers[layer];
        return new TokenMixerOptions
        {
            Dim = Dim, Heads = l.Heads, MaxSeqLen = MaxSeqLen, RotaryDim = RotaryDimOf(layer),
            SepConvKernelSize = l.SepConv1dKernelSize, SGConvKernelSize = l.SGConvKernelSize, SGConv3KernelSize = l.SGConv3KernelSize,
            LocalAttnWindowSize = l.LocalAttnWindowSize, LshNumHashes = l.LshNumHashes, LshBucketSize = l.LshBucketSize,
            LshNumBuckets = l.LshNumBuckets, LshHashSeed = LshHashSeed + layer,
        };
    }

    public static readonly OptionTable<TransformerPlusPlusConfig> Table = new OptionTable<TransformerPlusPlusConfig>()
        .Int("num_tokens", c => c.NumTokens, (c, v) => c with { NumTokens = v })
        .Int("max_seq_len", c => c.MaxSeqLen, (c, v) => c with { MaxSeqLen = v })
        .Int("dim", c => c.Dim, (c, v) => c with { Dim = v })
        .Nested("block", (c, e, path) => c with { Block = e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new ConfigException(path, $"expected one of {string.Join(", ", Blocks)}, got {OptionTable<TransformerPlusPlusConfig>.Describe(e)}") },
            c => c.Block)
        .OptInt("rotary_dim", c => c.RotaryDim, (c, v) => c with { RotaryDim = v })
        .Double("emb_dropout", c => c.EmbDropout, (c, v) => c with { EmbDropout = v })
        .Double("resid_dropout", c => c.ResidDropout, (c, v) => c with { ResidDropout = v })
        .Double("layer_norm_eps", c => c.LayerNormEps, (c, v) => c with { LayerNormEps = v })
        .Int("lsh_hash_seed", c => c.LshHashSeed, (c, v) => c with { LshHashSeed = v });

    /// <summary>Keys of the whole model; every other top-level key is a layer key (or <c>depth</c>, <c>layers</c>).</summary>
    static IEnumerable<string> ModelKeys => Table.Keys.Append("type");

    public static new TransformerPlusPlusConfig FromJson(JsonElement obj)
    {
        Require(obj, "num_tokens", "max_seq_len", "dim");
        var layerKeys = TransformerPlusPlusLayer.Table.Keys.Append("depth").Append("layers").ToArray();
        var c = Table.Read(obj, new TransformerPlusPlusConfig(), "", [.. layerKeys, "type"]);
        var defaults = TransformerPlusPlusLayer.Table.Read(obj, new TransformerPlusPlusLayer(), "", [.. ModelKeys, "depth", "layers"]);

        int? depth = obj.TryGetProperty("depth", out var d) ? OptionTable<TransformerPlusPlusConfig>.ReadInt(d, "depth") : null;
        List<TransformerPlusPlusLayer> layers;
        if (obj.TryGetProperty("layers", out var list))
        {
            if (list.ValueKind != JsonValueKind.Array) throw new ConfigException("layers", $"expected a list with one object per layer, got {OptionTable<TransformerPlusPlusConfig>.Describe(list)}");
            layers = list.EnumerateArray().Select((layer, i) => layer.ValueKind == JsonValueKind.Object
                ? TransformerPlusPlusLayer.Table.Read(layer, defaults, $"layers[{i}].")
                : throw new ConfigException($"layers[{i}]", $"expected an object, got {OptionTable<TransformerPlusPlusConfig>.Describe(layer)}")).ToList();
            if (depth is { } n && n != layers.Count) throw new ConfigException("depth", $"is {n} but 'layers' lists {layers.Count} layers");
        }
        else
        {
            if (depth is null) throw new ConfigException("depth", "is required (or give 'layers', one object per layer)");
            if (depth is < 1 or > 10_000) throw new ConfigException("depth", $"must be between 1 and 10000, got {depth}");
            layers = Enumerable.Repeat(defaults, depth.Value).ToList();
        }
        c = c with { Layers = layers };
        c.Validate(perLayerKeys: list.ValueKind == JsonValueKind.Array);
        return c;
    }

    public override JsonObject ToJson()
    {
        var o = new JsonObject { ["type"] = Type };
        Table.Write(this, new TransformerPlusPlusConfig(), o, "num_tokens", "max_seq_len", "dim");
        o["depth"] = Depth;
        var layers = Layers.Select(l => l.ToJson()).ToList();
        if (layers.Count > 0 && layers.All(l => JsonNode.DeepEquals(l, layers[0])))
        {
            foreach (var (key, value) in layers[0]) o[key] = value?.DeepClone();
        }
        else o["layers"] = new JsonArray(layers.Select(l => (JsonNode?)l).ToArray());
        return o;
    }

    /// <summary>Checks the whole model; layer errors name <c>layers[i].key</c>, or just the key when every layer is the same object.</summary>
    public void Validate() => Validate(perLayerKeys: !Layers.All(l => ReferenceEquals(l, Layers[0])));

    /// <summary>Checks the whole model; with <paramref name="perLayerKeys"/>, layer errors name <c>layers[i].key</c>, else the key alone.</summary>
    public void Validate(bool perLayerKeys)
    {
        if (NumTokens <= 0) throw new ConfigException("num_tokens", "must be a positive integer");
        if (MaxSeqLen <= 0) throw new ConfigException("max_seq_len", "must be a positive integer");
        if (Dim <= 0) throw new ConfigException("dim", "must be a positive integer");
        if (!Blocks.Contains(Block)) throw new ConfigException("block", $"expected one of {string.Join(", ", Blocks)}, got '{Block}'");
        if (RotaryDim is < 0 || RotaryDim % 2 == 1) throw new ConfigException("rotary_dim", $"must be an even number ≥ 0, got {RotaryDim}");
        if (EmbDropout is < 0 or >= 1) throw new ConfigException("emb_dropout", "must be in [0, 1)");
        if (ResidDropout is < 0 or >= 1) throw new ConfigException("resid_dropout", "must be in [0, 1)");
        if (!(LayerNormEps > 0)) throw new ConfigException("layer_norm_eps", "must be positive");
        if (Layers.Count == 0) throw new ConfigException("depth", "must be at least 1");
        for (int i = 0; i < Layers.Count; i++) Layers[i].Validate(this, perLayerKeys ? $"layers[{i}]." : "");
    }
}

/// <summary>
/// One Transformer++ layer: its heads, how they are shared out among token mixers (<see cref="Mixers"/>, in
/// concatenation order), the feed-forward width and the sizes of the mixers it uses (null where unused).
/// </summary>
public sealed record TransformerPlusPlusLayer
{
    public int Heads { get; init; }
    /// <summary>Hidden width of the feed-forward (Archai's <c>d_inner</c>).</summary>
    public int FfInnerDim { get; init; }
    public IReadOnlyList<MixerHeads> Mixers { get; init; } = [];
    public int? SepConv1dKernelSize { get; init; }
    public int? SGConvKernelSize { get; init; }
    public int? SGConv3KernelSize { get; init; }
    public int? LocalAttnWindowSize { get; init; }
    public int? LshNumHashes { get; init; }
    public int? LshBucketSize { get; init; }
    /// <summary>Buckets per LSH round (1 or even); null: Hugging Face's automatic choice for max_seq_len.</summary>
    public int? LshNumBuckets { get; init; }

    public bool Uses(string op) => Mixers.Any(m => m.Op == op);

    public static readonly OptionTable<TransformerPlusPlusLayer> Table = new OptionTable<TransformerPlusPlusLayer>()
        .Int("heads", l => l.Heads, (l, v) => l with { Heads = v })
        .Int("ff_inner_dim", l => l.FfInnerDim, (l, v) => l with { FfInnerDim = v })
        .Nested("mixers", (l, e, path) => l with { Mixers = ReadMixers(e, path) }, l => MixersJson(l.Mixers))
        .OptInt("sep_conv1d_kernel_size", l => l.SepConv1dKernelSize, (l, v) => l with { SepConv1dKernelSize = v })
        .OptInt("sgconv_kernel_size", l => l.SGConvKernelSize, (l, v) => l with { SGConvKernelSize = v })
        .OptInt("sgconv3_kernel_size", l => l.SGConv3KernelSize, (l, v) => l with { SGConv3KernelSize = v })
        .OptInt("local_attn_window_size", l => l.LocalAttnWindowSize, (l, v) => l with { LocalAttnWindowSize = v })
        .OptInt("lsh_num_hashes", l => l.LshNumHashes, (l, v) => l with { LshNumHashes = v })
        .OptInt("lsh_bucket_size", l => l.LshBucketSize, (l, v) => l with { LshBucketSize = v })
        .OptInt("lsh_num_buckets", l => l.LshNumBuckets, (l, v) => l with { LshNumBuckets = v });

    public JsonObject ToJson()
    {
        var o = new JsonObject();
        Table.Write(this, new TransformerPlusPlusLayer(), o, "heads", "ff_inner_dim", "mixers");
        return o;
    }

    static IReadOnlyList<MixerHeads> ReadMixers(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new ConfigException(path, $"expected an object of heads per mixer, e.g. {{\"mha\": 2, \"sgconv\": 2}}, got {OptionTable<TransformerPlusPlusLayer>.Describe(e)}");
        var mixers = new List<MixerHeads>();
        foreach (var p in e.EnumerateObject())
        {
            if (!TokenMixerFactory.OpNames.Contains(p.Name))
                throw new ConfigException($"{path}.{p.Name}", $"unknown mixer '{p.Name}' (known: {string.Join(", ", TokenMixerFactory.OpNames)})");
            if (mixers.Any(m => m.Op == p.Name)) throw new ConfigException($"{path}.{p.Name}", "given twice");
            mixers.Add(new MixerHeads(p.Name, OptionTable<TransformerPlusPlusLayer>.ReadInt(p.Value, $"{path}.{p.Name}")));
        }
        return mixers;
    }

    static JsonObject MixersJson(IReadOnlyList<MixerHeads> mixers)
    {
        var o = new JsonObject();
        foreach (var m in mixers) o[m.Op] = m.Heads;
        return o;
    }

    /// <summary>Checks the layer against the model; <paramref name="prefix"/> is its key path (<c>layers[i].</c>, or empty when all layers are alike).</summary>
    public void Validate(TransformerPlusPlusConfig model, string prefix)
    {
        if (Heads <= 0) throw new ConfigException(prefix + "heads", "must be a positive integer");
        if (model.Dim % Heads != 0) throw new ConfigException(prefix + "heads", $"must divide dim ({model.Dim}), got {Heads}");
        if (FfInnerDim <= 0) throw new ConfigException(prefix + "ff_inner_dim", "must be a positive integer");
        if (Mixers.Count == 0) throw new ConfigException(prefix + "mixers", "is required: heads per mixer, e.g. {\"mha\": 2, \"sgconv\": 2}");
        foreach (var m in Mixers)
            if (m.Heads < 1) throw new ConfigException($"{prefix}mixers.{m.Op}", $"must be at least 1 head, got {m.Heads}");
        var total = Mixers.Sum(m => m.Heads);
        if (total != Heads)
            throw new ConfigException(prefix + "mixers", $"the mixers' heads add up to {total} ({Describe(Mixers)}), not the layer's {Heads} heads");

        var maxLen = model.MaxSeqLen;
        CheckSize("sep_conv1d", "sep_conv1d_kernel_size", SepConv1dKernelSize, prefix);
        CheckSize("sgconv", "sgconv_kernel_size", SGConvKernelSize, prefix, 2 * maxLen - 1, "less than twice max_seq_len");
        CheckSize("sgconv3", "sgconv3_kernel_size", SGConv3KernelSize, prefix, 2 * maxLen - 1, "less than twice max_seq_len");
        CheckSize("local_attn", "local_attn_window_size", LocalAttnWindowSize, prefix);
        CheckSize("lsh_attn", "lsh_num_hashes", LshNumHashes, prefix);
        CheckSize("lsh_attn", "lsh_bucket_size", LshBucketSize, prefix);
        if (Uses("lsh_attn"))
        {
            if (LshNumBuckets is { } nb && (nb < 1 || (nb > 1 && nb % 2 != 0)))
                throw new ConfigException(prefix + "lsh_num_buckets", $"must be 1 or an even number, got {nb}");
            if (model.Dim / Heads % 2 != 0)
                throw new ConfigException(prefix + "heads", $"lsh_attn's rotary embedding needs an even head size, and dim {model.Dim} / {Heads} heads is odd");
        }
    }

    void CheckSize(string op, string key, int? value, string prefix, int max = int.MaxValue, string? limit = null)
    {
        if (value is { } v && (v < 1 || v > max))
            throw new ConfigException(prefix + key, $"must be a positive integer{(limit is null ? "" : $" {limit}")}, got {v}");
        if (value is null && Uses(op)) throw new ConfigException(prefix + key, $"is required by the {op} mixer");
    }

    static string Describe(IEnumerable<MixerHeads> mixers) => string.Join(", ", mixers.Select(m => $"{m.Op} {m.Heads}"));
}

/// <summary>A token mixer of a layer (an Archai op name) and the heads it owns.</summary>
public sealed record MixerHeads(string Op, int Heads);
