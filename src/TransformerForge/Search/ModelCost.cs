using System.Text.Json.Nodes;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Training;

namespace TransformerForge.Search;

/// <summary>
/// What a model costs: analytic forward FLOPs per token, and its parameters counted on the built module.
/// <para>
/// FLOPs count multiply-adds as 2 and cover the matrix products (projections, attention scores and weighted sums
/// over the full context of <c>n</c> tokens, as a causal model computes them before masking, feed-forwards, the
/// output projection) plus depth-wise convolutions, talking-heads mixing and FFT long convolutions
/// (3 real FFTs of length 2n at 2.5·N·log2 N each); norms, activations, biases, softmax and embedding lookups are left
/// out. The same formula for every candidate, so it ranks them fairly; it is not a profiler.
/// </para>
/// </summary>
public static class ModelCost
{
    /// <summary>Forward FLOPs per token of <paramref name="spec"/> (a model JSON) at a context of <paramref name="contextLength"/> tokens.</summary>
    public static double FlopsPerToken(JsonObject spec, int contextLength)
    {
        if (contextLength < 1) throw new ArgumentOutOfRangeException(nameof(contextLength));
        if (spec.ContainsKey("hidden_layers")) return TfppFlops(spec, contextLength);
        var config = ModelConfig.Parse(spec.ToJsonString());
        return config switch
        {
            TransformerWrapperConfig w => DecoderFlops(w, contextLength),
            _ => throw new SearchException($"FLOPs are counted for TransformerWrapper and Transformer++ models, not {config.Type}"),
        };
    }

    /// <summary>
    /// x-transformers' <c>TransformerWrapper</c>: every 'a' and 'f' layer of the stack as it runs (a weight-tied block
    /// <c>depth</c> times), then the logits. Grouped key/value heads (1.40) shrink the key and value projections only.
    /// </summary>
    public static double DecoderFlops(TransformerWrapperConfig w, int n)
    {
        var c = w.AttnLayers;
        var a = c.SelfAttn;
        var f = c.FeedForward;
        double dim = c.Dim, heads = c.Heads, dimHead = a.DimHead;
        double v = heads * dimHead;
        double qk = a.CollabHeads ? (int)(a.CollabCompression * v) : v;
        double kv = a.CollabHeads ? qk : a.KeyValueHeads(c.Heads) * dimHead;      // to_k's (and to_v's) width
        double keys = n + a.NumMemKv + (w.NumMemoryTokens ?? 0);

        double attention = 2 * dim * qk + 2 * dim * kv + 2 * dim * (a.CollabHeads ? v : kv)   // to_q, to_k, to_v
                           + 2 * keys * qk + 2 * keys * v                     // q·kᵀ and attention·v
                           + 2 * v * dim * (a.OnAttn ? 2 : 1);                // to_out
        if (a.GateValues) attention += 2 * dim * v;
        if (a.GateValueHeads) attention += 2 * dim * heads;
        if (a.TalkingHeads) attention += 2 * 2 * heads * heads * keys;        // pre- and post-softmax head mixing
        attention += ((a.PreTalkingHeads ? 1 : 0) + (a.PostTalkingHeads ? 1 : 0)) * 2 * heads * heads * keys;
        if (a.Dconv) attention += 2 * a.DconvKernelSize * (qk + 2 * kv);

        double inner = (int)(c.Dim * f.Mult);
        double feedForward = 2 * dim * inner * (f.Glu ? 2 : 1) + 2 * inner * dim;

        var types = c.LayerTypes();
        var run = c.ExecutionOrder().Select(i => types[i]).ToList();
        double total = run.Count(t => t is 'a' or 'c') * attention + run.Count(t => t == 'f') * feedForward;
        total += c.UnetSkipSources().Count * 2 * (2 * dim) * dim;               // U-Net skip combiners
        int emb = w.EmbDim ?? c.Dim;
        if (emb != c.Dim) total += 2 * emb * dim;
        return total + 2 * dim * w.NumTokens;
    }

    /// <summary>Archai's Transformer++ (codegen backbone): per layer its mixers, the block's out_proj and the MLP; then lm_head.</summary>
    public static double TfppFlops(JsonObject spec, int n)
    {
        double hidden = Int(spec, "hidden_size");
        double vocab = Int(spec, "vocab_size");
        var list = spec["hidden_layers"] as JsonObject ?? throw new SearchException("hidden_layers must be an object");
        int depth = Int(list, "_repeat_times");
        var configs = list["_configs"] as JsonObject ?? throw new SearchException("hidden_layers._configs must be an object");
        double fft = 15 * Math.Log2(2.0 * n) + 6;   // 3 real FFTs of 2n points and a complex product, per channel and token
        double total = 0;
        for (int i = 0; i < depth; i++)
        {
            var layer = configs[i.ToString()] as JsonObject ?? throw new SearchException($"hidden_layers._configs has no layer {i}");
            int heads = Int(layer, "total_heads");
            double headSize = hidden / heads;
            foreach (var pair in (JsonArray)layer["op_allocation"]!)
            {
                var op = pair![0]!.GetValue<string>();
                int opHeads = HeadAllocationSimplex.Heads(heads, pair[1]!.GetValue<double>());
                if (opHeads == 0) continue;
                double s = opHeads * headSize;
                var settings = layer[op] as JsonObject;
                total += op switch
                {
                    "mha" => 2 * hidden * 3 * s + 2 * 2 * n * s,
                    "local_attn" => 2 * hidden * 3 * s + 2 * 2 * Math.Min(n, 2 * Int(settings!, "window_size")) * s,
                    "sep_conv1d" => 2 * hidden * s + 2 * Int(settings!, "kernel_size") * s,
                    "sgconv" => 2 * hidden * 2 * s + fft * s + s + 2 * s * s,
                    "sgconv3" => 2 * hidden * 2 * s + 4 * 2 * s * s + fft * s + (fft + 1) * s * opHeads + 2 * s * opHeads,
                    "lsh_attn" => LshFlops(hidden, s, n, Int(settings!, "num_hashes"), Int(settings!, "bucket_size")),
                    _ => throw new SearchException($"no FLOPs formula for Transformer++ op '{op}'"),
                };
            }
            total += 2 * hidden * hidden;                            // the mixed block's out_proj
            total += 2 * 2 * hidden * Int(layer, "d_inner");         // MLP fc1 and fc2
        }
        return total + 2 * hidden * vocab;
    }

    /// <summary>Reformer LSH attention: shared query-key and value projections, hashing by random rotations, and
    /// per hash round attention within a query's bucket chunk and the one before it.</summary>
    static double LshFlops(double hidden, double s, int n, int hashes, int bucket)
    {
        double buckets = Math.Max(2, 2.0 * n / bucket);
        return 2 * hidden * 2 * s + hashes * (2 * s * buckets / 2 + 2 * 2 * Math.Min(n, 2 * bucket) * s);
    }

    static int Int(JsonObject o, string key) =>
        o[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw new SearchException($"model JSON has no integer '{key}'");

    /// <summary>Names of token/position embeddings and output projections, left out of the non-embedding count.</summary>
    static readonly string[] EmbeddingPrefixes = ["token_emb.", "pos_emb.", "to_logits.", "wte.", "wpe.", "lm_head.", "transformer.wte.", "transformer.wpe."];

    /// <summary>Total and non-embedding parameters of a built model (tied weights counted once).</summary>
    public static (long Total, long NonEmbedding) CountParameters(torch.nn.Module model)
    {
        long total = 0, embedding = 0;
        foreach (var p in ParameterGroups.Unique(model))
        {
            total += p.Parameter.NumberOfElements;
            if (EmbeddingPrefixes.Any(prefix => p.Name.StartsWith(prefix, StringComparison.Ordinal)) || p.Name == "memory_tokens")
                embedding += p.Parameter.NumberOfElements;
        }
        return (total, total - embedding);
    }
}
