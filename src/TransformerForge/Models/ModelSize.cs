using TransformerForge.Config;

namespace TransformerForge.Models;

/// <summary>
/// What a model of a configuration holds and needs, computed from the configuration alone (nothing is allocated):
/// its exact parameter count and estimates of the memory it takes to run or train. All arithmetic is checked 64-bit,
/// so an absurd configuration (depth 2^31, heads × attn_dim_head past 2^31) gives an error, not a wrapped number.
/// <para>
/// The one place that knows each model type's parameters: a new model type adds its case to <see cref="ParameterCount"/>
/// (the switch throws for a type it does not know), and <c>ModelSizeTests</c> checks the count against the built model
/// for every fixture configuration.
/// </para>
/// </summary>
public static class ModelSize
{
    /// <summary>The number of distinct parameters (tied weights counted once) the model of <paramref name="config"/> has.</summary>
    public static long ParameterCount(ModelConfig config) => Checked(() => config switch
    {
        TransformerWrapperConfig c => TokenWrapper(c),
        ContinuousTransformerWrapperConfig c => Continuous(c),
        ViTransformerWrapperConfig c => VisionWrapper(c),
        XTransformerConfig c => TokenWrapper(c.Encoder) + TokenWrapper(c.Decoder)
                                - (c.TieTokenEmb ? (long)c.Decoder.NumTokens * (c.Decoder.EmbDim ?? c.Decoder.AttnLayers.Dim) : 0),
        FeedbackTransformerConfig c => Feedback(c),
        TransformerPlusPlusConfig c => TransformerPlusPlus(c),
        AttentionLayersModelConfig c => Layers(c.Layers),
        _ => throw new NotSupportedException($"ModelSize has no parameter count for configuration type '{config.Type}'; add its case"),
    });

    /// <summary>Memory the parameters alone take (what building the model allocates).</summary>
    public static MemoryEstimate ForParameters(ModelConfig config, int elementSize = 4) => Checked(() =>
    {
        long parameters = ParameterCount(config);
        return new MemoryEstimate(parameters, checked(parameters * elementSize), 0, 0, 0, 0);
    });

    /// <summary>
    /// Memory to run the model on <paramref name="batch"/> sequences of <paramref name="seqLen"/> positions without
    /// gradients (generation, evaluation): the parameters plus the largest layer's activations.
    /// </summary>
    public static MemoryEstimate ForInference(ModelConfig config, long batch, long seqLen, int elementSize = 4) => Checked(() =>
    {
        long parameters = ParameterCount(config);
        var shape = Shape(config);
        long activations = shape is null ? 0 : checked(InferenceActivations(shape, batch, seqLen) * elementSize);
        return new MemoryEstimate(parameters, checked(parameters * elementSize), 0, activations, batch, seqLen);
    });

    /// <summary>
    /// Memory to train with AdamW: parameters, their gradients and two moments, and the activations one micro-batch of
    /// <paramref name="batch"/> × <paramref name="seqLen"/> keeps for the backward pass.
    /// </summary>
    public static MemoryEstimate ForTraining(ModelConfig config, long batch, long seqLen, int elementSize = 4) => Checked(() =>
    {
        long parameters = ParameterCount(config);
        var shape = Shape(config);
        long activations = shape is null ? 0 : checked(TrainingActivations(shape, batch, seqLen) * elementSize);
        long bytes = checked(parameters * elementSize);
        return new MemoryEstimate(parameters, bytes, checked(3 * bytes), activations, batch, seqLen);
    });

    // ---- parameters ----------------------------------------------------------------------------------------------

    static long TokenWrapper(TransformerWrapperConfig c)
    {
        long dim = c.AttnLayers.Dim, emb = c.EmbDim ?? dim;
        long n = checked((long)c.NumTokens * emb);                                    // token_emb
        if (c.UsePosEmb && !c.AttnLayers.HasPosEmb) n = checked(n + (long)c.MaxSeqLen * emb);
        if (emb != dim) n = checked(n + Linear(emb, dim));                             // project_emb
        n = checked(n + Layers(c.AttnLayers) + 2 * dim);                               // layers, norm
        if (!c.TieEmbedding) n = checked(n + Linear(dim, c.NumTokens));                // to_logits
        return checked(n + (long)(c.NumMemoryTokens ?? 0) * dim);                      // memory_tokens
    }

    static long Continuous(ContinuousTransformerWrapperConfig c)
    {
        long dim = c.AttnLayers.Dim;
        long n = c.UsePosEmb && !c.AttnLayers.HasPosEmb ? checked((long)c.MaxSeqLen * dim) : 0;
        if (c.DimIn is { } din) n = checked(n + Linear(din, dim));
        n = checked(n + Layers(c.AttnLayers) + 2 * dim);
        if (c.DimOut is { } dout) n = checked(n + Linear(dim, dout));
        return n;
    }

    static long VisionWrapper(ViTransformerWrapperConfig c)
    {
        long dim = c.AttnLayers.Dim;
        long side = c.ImageSize / c.PatchSize;
        long patches = checked(side * side);
        long patchDim = checked(3L * c.PatchSize * c.PatchSize);
        long n = checked((patches + 1) * dim + Linear(patchDim, dim) + dim);          // pos_embedding, patch_to_embedding, cls_token
        n = checked(n + Layers(c.AttnLayers) + 2 * dim);
        if (c.NumClasses is { } classes) n = checked(n + FeedForward(dim, 4, glu: false, postActLn: false, dimOut: classes));
        return n;
    }

    static long Feedback(FeedbackTransformerConfig c)
    {
        long d = c.Dim, ff = c.FeedForwardWidth, memory = c.MaxSeqLen - 1L;
        long attention = checked(d * d + Linear(d, d) + memory * d + memory * c.Heads + d);   // query, output, key/query position terms
        if (!c.SharedKv) attention = checked(attention + d * d + Linear(d, d));               // key, value
        long layer = checked(attention + Linear(d, ff) + Linear(ff, d) + 4 * d);              // + feed-forward, two norms
        long n = checked((long)c.NumTokens * d + c.Depth * layer + 2 * d + (c.Depth + 1L) + Linear(d, c.NumTokens));
        return c.SharedKv ? checked(n + 2 * d * d) : n;                                       // shared memory key/value
    }

    /// <summary>Transformer++: embeddings, per layer its norm(s), mixers, <c>out_proj</c> and GELU feed-forward, then <c>ln_f</c> and <c>lm_head</c>.</summary>
    static long TransformerPlusPlus(TransformerPlusPlusConfig c)
    {
        long dim = c.Dim;
        bool gpt2 = c.Block == TransformerPlusPlusConfig.Gpt2;
        long n = checked((long)c.NumTokens * dim + (gpt2 ? (long)c.MaxSeqLen * dim : 0) + 2 * dim);   // wte, wpe, ln_f
        n = checked(n + (gpt2 ? dim * c.NumTokens : Linear(dim, c.NumTokens)));                       // lm_head
        foreach (var layer in c.Layers)
        {
            long dimHead = dim / layer.Heads;
            long block = checked((gpt2 ? 4 : 2) * dim + Linear(dim, dim) + Linear(dim, layer.FfInnerDim) + Linear(layer.FfInnerDim, dim));
            foreach (var m in layer.Mixers)
                block = checked(block + Mixer(m.Op, dim, checked(m.Heads * dimHead), m.Heads, layer, c.MaxSeqLen));
            n = checked(n + block);
        }
        return n;
    }

    /// <summary>One token mixer producing <paramref name="dimOut"/> features from <paramref name="heads"/> heads.</summary>
    static long Mixer(string op, long dim, long dimOut, long heads, TransformerPlusPlusLayer layer, int maxSeqLen) => op switch
    {
        "mha" => Linear(dim, checked(3 * dimOut)),                                                                       // Wqkv
        "sep_conv1d" => checked(Linear(dim, dimOut) + dimOut * layer.SepConv1dKernelSize!.Value + dimOut),               // conv_map_in, depth-wise conv
        "sgconv" => checked(Linear(dim, 2 * dimOut) + dimOut + Kernels(dimOut, layer.SGConvKernelSize!.Value, maxSeqLen) + Linear(dimOut, dimOut)),
        "sgconv3" => checked(Linear(dim, 2 * dimOut) + dimOut / heads + dimOut                                            // in_proj, D, D_key
                             + Kernels(dimOut / heads, layer.SGConv3KernelSize!.Value, maxSeqLen) + Kernels(dimOut, layer.SGConv3KernelSize!.Value, maxSeqLen)
                             + 5 * Linear(dimOut, dimOut)),                                                               // output, q, k, v, pw
        "local_attn" => checked(dim * 3 * dimOut),                                                                       // to_qkv, no bias
        "lsh_attn" => checked(2 * dim + 2 * dim * dimOut),                                                               // layer_norm, query_key, value
        _ => throw new NotSupportedException($"ModelSize has no parameter count for the Transformer++ mixer '{op}'; add its case"),
    };

    /// <summary>SGConv's multi-scale kernels: one [channels, kernelSize] parameter per scale.</summary>
    static long Kernels(long channels, int kernelSize, int maxSeqLen) =>
        checked(channels * kernelSize * Modules.TokenMixers.LongConvolution.ScaleCount(maxSeqLen, kernelSize));

    /// <summary>x-transformers' <c>AttentionLayers</c>: positions, then per layer its norm(s), block and residual join.</summary>
    internal static long Layers(AttentionLayersConfig c)
    {
        long dim = c.Dim;
        var (selfAttn, crossAttn, ff) = LayerCounts(c);
        long layers = checked(selfAttn + crossAttn + ff);

        long n = 0;
        if (c.RelPosBias) n = checked((long)c.RelPosNumBuckets * c.Heads);
        else if (c.AlibiPosBias && c.AlibiLearned) n = c.AlibiNumHeads ?? c.Heads;

        long norm = c.UseRezero ? 0 : c.UseRmsnorm ? dim : c.UseScalenorm ? 1 : 2 * dim;
        long join = (c.GateResidual ? checked(6 * dim * dim + 6 * dim) : 0) + (c.ScaleResidual ? dim : 0);
        long perLayer = checked(norm * (c.SandwichNorm ? 2 : 1) + join + (c.UseRezero ? 1 : 0));

        n = checked(n + layers * perLayer);
        n = checked(n + selfAttn * Attention(c, self: true));
        n = checked(n + crossAttn * Attention(c, self: false));
        n = checked(n + ff * FeedForward(dim, c.Ff.Mult, c.Ff.Glu, c.Ff.PostActLn, dim));
        return n;
    }

    static long Attention(AttentionLayersConfig c, bool self)
    {
        var o = self ? c.SelfAttn : c.CrossAttn;
        long dim = c.Dim, h = c.Heads, dh = o.DimHead;
        long qk = checked(h * dh), v = qk;
        long n = 0;
        if (o.CollabHeads)
        {
            qk = (long)(o.CollabCompression * qk);
            n = checked(h * qk);                                                       // collab_mixing
        }
        n = checked(n + 2 * dim * qk + dim * v);                                       // to_q, to_k, to_v
        if (o.QkvBias) n = checked(n + 2 * qk + v);
        if (o.Dconv)
        {
            long channels = o.DconvSharedHeads ? dh : qk;
            n = checked(n + 3 * (channels * o.DconvKernelSize + channels));          // to_{q,k,v}_dconv
        }
        if (o.GateValues) n = checked(n + Linear(dim, v));
        if (o.TalkingHeads) n = checked(n + 2 * h * h);
        if (o.HeadScale) n = checked(n + h);
        n = checked(n + 2 * h * o.NumMemKv * dh);                                      // mem_k, mem_v
        return checked(n + (o.OnAttn ? Linear(v, 2 * dim) : Linear(v, dim)));        // to_out
    }

    static long FeedForward(long dim, double mult, bool glu, bool postActLn, long dimOut)
    {
        long inner = Inner(dim, mult);
        long n = glu ? Linear(dim, checked(2 * inner)) : Linear(dim, inner);
        if (postActLn) n = checked(n + 2 * inner);
        return checked(n + Linear(inner, dimOut));
    }

    /// <summary>The feed-forward hidden width, <c>int(dim * mult)</c> as x-transformers computes it.</summary>
    internal static long Inner(long dim, double mult)
    {
        double inner = Math.Floor(dim * mult);
        if (!double.IsFinite(inner) || inner > long.MaxValue) throw new OverflowException();
        return (long)inner;
    }

    static long Linear(long input, long output) => checked(input * output + output);

    /// <summary>
    /// How many self-attention, cross-attention and feed-forward layers the stack has, by arithmetic on the layer
    /// order's rules (<see cref="AttentionLayersConfig.LayerTypes"/> would list them, which for depth 2^31 is 4 GB).
    /// </summary>
    public static (long SelfAttention, long CrossAttention, long FeedForward) LayerCounts(AttentionLayersConfig c)
    {
        if (c.CustomLayers is { } custom)
            return (custom.Count(s => s == "a"), custom.Count(s => s == "c"), custom.Count(s => s == "f"));
        bool cross = c.HasCrossAttention, onlyCross = c.IsOnlyCross;
        long blockA = cross && onlyCross ? 0 : 1, blockC = cross ? 1 : 0, blockF = c.Macaron ? 2 : 1;
        long blockLen = blockA + blockC + blockF;
        long depth = c.Depth;
        if (c.ParRatio is { } par)
        {
            long parDepth = checked(depth * blockLen);
            long parAttn = parDepth / par;
            long a = checked(parAttn * blockA), x = checked(parAttn * blockC);
            // As LayerTypes: the attention head (par_attn blocks of par_width) may outgrow par_depth; then no 'f' follows it.
            long head = parAttn > 0 ? parAttn * AttentionLayersConfig.ParBlockWidth(parDepth, parAttn) : 0;
            return (a, x, Math.Max(parDepth, head) - a - x);
        }
        if (c.SandwichCoef is { } k)
            return (checked(k + (depth - k) * blockA), checked((depth - k) * blockC), checked((depth - k) * blockF + k));
        return (checked(depth * blockA), checked(depth * blockC), checked(depth * blockF));
    }

    // ---- activations ---------------------------------------------------------------------------------------------

    /// <summary>The sizes activations depend on: the layer stack, the vocabulary (logits) and extra key positions.</summary>
    sealed record StackShape(AttentionLayersConfig Layers, long Vocabulary, long ExtraKeys);

    static StackShape? Shape(ModelConfig config) => config switch
    {
        TransformerWrapperConfig c => new(c.AttnLayers, c.NumTokens, checked((long)(c.NumMemoryTokens ?? 0) + c.MaxMemLen)),
        ContinuousTransformerWrapperConfig c => new(c.AttnLayers, c.DimOut ?? c.AttnLayers.Dim, 0),
        ViTransformerWrapperConfig c => new(c.AttnLayers, c.NumClasses ?? 0, 1),
        XTransformerConfig c => new(c.Decoder.AttnLayers, c.Decoder.NumTokens, 0),
        AttentionLayersModelConfig c => new(c.Layers, 0, 0),
        // Feedback: every step attends over all earlier steps of every layer's memory.
        FeedbackTransformerConfig c => new(new AttentionLayersConfig { Dim = c.Dim, Depth = c.Depth, Heads = c.Heads,
            Attn = new AttentionOptions { DimHead = c.Dim / c.Heads }, Ff = new FeedForwardOptions { Mult = (double)c.FeedForwardWidth / c.Dim } }, c.NumTokens, 0),
        // Transformer++: bounded by a stack of full attention over the widest layer's heads and feed-forward (the
        // convolutions and windowed or bucketed attention hold less than an n × n score matrix per head).
        TransformerPlusPlusConfig c => new(new AttentionLayersConfig { Dim = c.Dim, Depth = c.Depth, Heads = c.Layers.Max(l => l.Heads),
            Attn = new AttentionOptions { DimHead = c.Dim / c.Layers.Max(l => l.Heads) }, Ff = new FeedForwardOptions { Mult = (double)c.Layers.Max(l => l.FfInnerDim) / c.Dim } }, c.NumTokens, 0),
        _ => null,
    };

    /// <summary>Elements one forward with no gradient holds at its peak: one layer's working set plus the logits.</summary>
    static long InferenceActivations(StackShape s, long b, long n)
    {
        var c = s.Layers;
        long keys = checked(n + s.ExtraKeys + c.Attn.NumMemKv);
        long attention = checked(b * c.Heads * n * keys * 2 + b * n * c.Heads * c.Attn.DimHead * 4);
        long ff = checked(b * n * Inner(c.Dim, c.Ff.Mult) * (c.Ff.Glu ? 3 : 2));
        return checked(Math.Max(attention, ff) + 3 * b * n * c.Dim + 2 * b * n * s.Vocabulary);
    }

    /// <summary>
    /// Elements a training forward keeps for its backward: per attention layer its input, norm, q/k/v, scores and
    /// probabilities (and their dropout mask), output; per feed-forward its input, norm, hidden (twice with a GLU)
    /// and output; then the logits, their softmax and gradient.
    /// </summary>
    static long TrainingActivations(StackShape s, long b, long n)
    {
        var c = s.Layers;
        var (selfAttn, crossAttn, ff) = LayerCounts(c);
        long bnd = checked(b * n * c.Dim);
        long keys = checked(n + s.ExtraKeys + c.Attn.NumMemKv);
        long attention = checked(3 * bnd + 4 * b * n * c.Heads * c.Attn.DimHead + 3 * b * c.Heads * n * keys);
        long inner = Inner(c.Dim, c.Ff.Mult);
        long feedForward = checked(3 * bnd + b * n * inner * (c.Ff.Glu ? 3 : 2) + (c.Ff.PostActLn ? b * n * inner : 0));
        long layers = checked((selfAttn + crossAttn) * attention + ff * feedForward);
        return checked(layers + 2 * bnd + 3 * b * n * s.Vocabulary);
    }

    static T Checked<T>(Func<T> compute)
    {
        try { return compute(); }
        catch (OverflowException)
        {
            throw new ConfigException("", "the model's size overflows 64-bit arithmetic: no machine can hold it (check depth, dim, heads, attn_dim_head, num_tokens and max_seq_len)");
        }
    }
}

/// <summary>
/// Estimated bytes a model needs: its parameters, what training adds to them (gradients and AdamW's two moments), and
/// the activations of one batch of <see cref="Batch"/> × <see cref="SeqLen"/> positions.
/// </summary>
public sealed record MemoryEstimate(long ParameterCount, long ParameterBytes, long TrainingStateBytes, long ActivationBytes, long Batch, long SeqLen)
{
    /// <summary>The sum (saturating at <see cref="long.MaxValue"/>: an estimate that large is refused anyway).</summary>
    public long TotalBytes
    {
        get
        {
            try { return checked(ParameterBytes + TrainingStateBytes + ActivationBytes); }
            catch (OverflowException) { return long.MaxValue; }
        }
    }

    /// <summary>e.g. <c>about 12.3 GB (124,000,000 parameters: 496 MB; gradients and optimizer state: 1.5 GB; activations of batch 32 × 1024: 10.3 GB)</c>.</summary>
    public string Describe()
    {
        var parts = new List<string> { $"{ParameterCount:N0} parameters: {Bytes(ParameterBytes)}" };
        if (TrainingStateBytes > 0) parts.Add($"gradients and optimizer state: {Bytes(TrainingStateBytes)}");
        if (ActivationBytes > 0) parts.Add($"activations of batch {Batch} × {SeqLen}: {Bytes(ActivationBytes)}");
        return $"about {Bytes(TotalBytes)} ({string.Join("; ", parts)})";
    }

    /// <summary>Bytes in binary units, e.g. <c>1.5 GiB</c>.</summary>
    public static string Bytes(double bytes)
    {
        string[] units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        int u = 0;
        while (bytes >= 1024 && u < units.Length - 1) { bytes /= 1024; u++; }
        return u == 0 ? $"{bytes:0} bytes" : $"{bytes:0.#} {units[u]}";
    }
}
