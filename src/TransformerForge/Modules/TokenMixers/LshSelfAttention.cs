using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Reformer's LSH self-attention (Kitaev et al. 2020) as Hugging Face's <c>LSHSelfAttention</c> computes it for a
/// decoder, made strictly causal. Queries and keys are one shared projection (<c>query_key</c>) rotated by GPT-J-style
/// rotary embeddings (Su et al. 2021; Archai's addition); keys are length-normalised and scaled by 1/√dim_head.
/// Each hash round assigns every position a bucket: the argmax over [xR, -xR] of its shared query/key x times a random
/// rotation R (angular LSH, Andoni et al. 2015; factorised into two hashes when there are many buckets).
/// <para>
/// Attention runs within a bucket, chunk by chunk: positions of one bucket are numbered in order, cut into chunks of
/// <see cref="ChunkLength"/>, and a position attends to the earlier positions of its bucket in its own chunk and the
/// chunk before it. A position never attends to itself (score -1e5, Hugging Face's self-mask value) unless nothing
/// else is available; other positions out of reach score -1e9. The rounds' outputs are combined with weights
/// softmax(log-sum-exp of each round's scores).
/// </para>
/// <para>
/// Where it differs from Hugging Face: Hugging Face chunks the sorted sequence of all buckets, so a later position's
/// bucket can move the chunk boundaries of earlier positions (their output then depends on the future), and it
/// switches to plain attention when the sequence fits in one chunk (the output at a position then depends on the
/// sequence's length). Chunking within each bucket keeps each output a function of the positions up to it, so a
/// sequence, its prefixes and cached decoding agree. The number of buckets is fixed when the module is built
/// (Hugging Face's rule: the power of two at most 2 · maxSeqLen / chunk, set from the first sequence it sees).
/// </para>
/// <para>
/// Rotations: while training, fresh ones from torch's generator at every call (Hugging Face without a hash seed);
/// in evaluation, fixed ones drawn from <c>hashSeed</c>, so that evaluation and generation are deterministic.
/// </para>
/// Names: <c>query_key</c>, <c>value</c> (Linear dim → heads·dim_head, no bias); Hugging Face's buffers
/// <c>self_mask_value_float16/32</c>, <c>mask_value_float16/32</c>. Input [B, L, dim], output [B, L, heads·dim_head].
/// </summary>
public sealed class LshSelfAttention : ForgeModule
{
    readonly Linear _queryKey, _value;

    public LshSelfAttention(int dim, int dimHead, int heads, int numHashes, int chunkLength, IReadOnlyList<int> bucketFactors, int hashSeed)
        : base(nameof(LshSelfAttention))
    {
        if (dimHead % 2 != 0) throw new ArgumentException($"LSH attention's rotary embedding needs an even head size, got {dimHead}", nameof(dimHead));
        if (numHashes < 1) throw new ArgumentOutOfRangeException(nameof(numHashes), numHashes, "must be at least 1");
        if (chunkLength < 1) throw new ArgumentOutOfRangeException(nameof(chunkLength), chunkLength, "must be at least 1");
        if (bucketFactors.Count == 0 || bucketFactors.Any(f => f < 1 || (f > 1 && f % 2 != 0)) || (bucketFactors.Count > 1 && bucketFactors.Contains(1)))
            throw new ArgumentException($"buckets must be 1 or even numbers, got [{string.Join(", ", bucketFactors)}]", nameof(bucketFactors));
        DimHead = dimHead;
        Heads = heads;
        NumHashes = numHashes;
        ChunkLength = chunkLength;
        BucketFactors = bucketFactors.ToArray();
        NumBuckets = bucketFactors.Aggregate(1, (a, b) => a * b);

        register_module("query_key", _queryKey = nn.Linear(dim, heads * dimHead, hasBias: false));
        register_module("value", _value = nn.Linear(dim, heads * dimHead, hasBias: false));
        register_buffer("self_mask_value_float16", tensor(-1e3f));
        register_buffer("self_mask_value_float32", tensor(-1e5f));
        register_buffer("mask_value_float16", tensor(-1e4f));
        register_buffer("mask_value_float32", tensor(-1e9f));
        if (NumBuckets > 1)
        {
            using var generator = new Generator((ulong)hashSeed);
            register_buffer("fixed_rotations", randn(RotationShape, generator: generator), persistent: false);
        }
    }

    public int DimHead { get; }
    public int Heads { get; }
    public int NumHashes { get; }
    /// <summary>Positions per chunk of a bucket (Archai's <c>bucket_size</c>, Hugging Face's <c>lsh_attn_chunk_length</c>).</summary>
    public int ChunkLength { get; }
    /// <summary>Buckets per hash round, as one factor or two (a factorised hash).</summary>
    public IReadOnlyList<int> BucketFactors { get; }
    public int NumBuckets { get; }

    long[] RotationShape => [Heads, DimHead, NumHashes, BucketFactors.Sum() / 2];

    /// <summary>
    /// Hugging Face's automatic number of buckets for sequences of <paramref name="maxSeqLen"/>: the largest power of two
    /// at most 2 · maxSeqLen / chunkLength, factorised in two when above 2 · max(√(4096 / chunkLength), chunkLength)
    /// (4096: Reformer's default max_position_embeddings, which Archai leaves); one bucket when a sequence fits in a chunk.
    /// </summary>
    public static IReadOnlyList<int> AutoBuckets(int maxSeqLen, int chunkLength)
    {
        var target = 2 * (maxSeqLen / chunkLength);
        if (target < 2) return [1];
        int power = 31 - System.Numerics.BitOperations.LeadingZeroCount((uint)target);
        var limit = 2 * Math.Max((int)Math.Sqrt(4096 / chunkLength), chunkLength);
        return (1 << power) > limit ? [1 << (power / 2), 1 << (power - power / 2)] : [1 << power];
    }

    /// <summary>The whole sequence (<paramref name="state"/> null), or the positions after those the state has seen.</summary>
    public Tensor Forward(Tensor x, LshState? state)
    {
        var (batch, length) = (x.shape[0], x.shape[1]);
        long offset = state?.Length ?? 0;
        var qk = Rotary(_queryKey.forward(x).view(batch, length, Heads, DimHead), offset).transpose(1, 2);  // [B, H, n, D]
        var v = _value.forward(x).view(batch, length, Heads, DimHead).transpose(1, 2);
        var buckets = Hash(qk);                                                                               // [B, H, R, n]

        var (output, logits) = state is null ? Chunked(qk, v, buckets) : state.Attend(this, qk, v, buckets);
        output = CombineRounds(output, logits);                                                               // [B, H, n, D]
        return output.transpose(1, 2).reshape(batch, length, Heads * DimHead);
    }

    /// <summary>Bucket of every position in every round, [B, H, rounds, n] (no gradient: hashing is not differentiable).</summary>
    public Tensor Hash(Tensor qk)
    {
        var shape = qk.shape;
        if (NumBuckets == 1) return zeros(shape[0], shape[1], NumHashes, shape[2], dtype: ScalarType.Int64, device: qk.device);
        using var _ = no_grad();
        var rotations = training ? randn(RotationShape, dtype: qk.dtype, device: qk.device) : get_buffer("fixed_rotations")!.to(qk.dtype);
        var rotated = einsum("bhtd,hdrk->bhrtk", qk.detach(), rotations);
        Tensor? buckets = null;
        long used = 0, product = 1;
        foreach (var factor in BucketFactors)
        {
            var part = rotated.narrow(-1, used, factor / 2);
            var bucket = cat([part, -part], -1).argmax(-1);
            buckets = buckets is null ? bucket : buckets + product * bucket;
            used += factor / 2;
            product *= factor;
        }
        return buckets!;
    }

    /// <summary>
    /// Attention of a whole sequence. Per round, positions are sorted by (bucket, position) and the sorted sequence is
    /// cut into blocks of <see cref="ChunkLength"/>: a position's keys (the earlier positions of its bucket from the
    /// start of its chunk's previous chunk) are at most 2·ChunkLength - 1 sorted places back, so within its own block
    /// and the two before it, where <see cref="Scores"/> masks every other key.
    /// Returns each round's output [B, H, R, L, D] and log-sum-exp of scores [B, H, R, L].
    /// </summary>
    (Tensor Output, Tensor Logits) Chunked(Tensor qk, Tensor v, Tensor buckets)
    {
        var (batch, heads, length, dim) = (qk.shape[0], qk.shape[1], qk.shape[2], qk.shape[3]);
        long rounds = NumHashes, chunk = ChunkLength;
        var device = qk.device;

        // Sort each round by (bucket, position); number each position within its bucket.
        var positions = arange(length, device: device);
        var order = (buckets * length + positions).argsort(-1);                                   // [B, H, R, L]
        var sortedBuckets = buckets.gather(-1, order);
        var inBucket = WithinBucketIndex(buckets, sortedBuckets, length);

        // Gather into sorted order and pad to whole blocks (padding: bucket -1, which no query has).
        long blocks = (length + chunk - 1) / chunk, padded = blocks * chunk;
        Tensor Sorted(Tensor t) => t.unsqueeze(2).expand(batch, heads, rounds, length, dim).gather(3, order.unsqueeze(-1).expand(batch, heads, rounds, length, dim));
        Tensor Pad(Tensor t, double value) => padded == length ? t
            : t.dim() == 5 ? nn.functional.pad(t, [0, 0, 0, padded - length], value: value) : nn.functional.pad(t, [0, padded - length], value: value);
        var q = Pad(Sorted(qk), 0).view(batch, heads, rounds, blocks, chunk, dim);
        var keys = Pad(Sorted(KeyNorm(qk)), 0).view(batch, heads, rounds, blocks, chunk, dim);
        var values = Pad(Sorted(v), 0).view(batch, heads, rounds, blocks, chunk, dim);
        var pos = Pad(order, -1).view(batch, heads, rounds, blocks, chunk);
        var bucket = Pad(sortedBuckets, -1).view(batch, heads, rounds, blocks, chunk);
        var chunkOf = Pad(inBucket.div(chunk, rounding_mode: RoundingMode.floor), -1).view(batch, heads, rounds, blocks, chunk);

        // Keys of a block: the two blocks before it and itself.
        var scores = Scores(einsum("bhrnqd,bhrnkd->bhrnqk", q, LookBack(keys, 0)),
            pos, bucket, chunkOf, LookBack(pos, -1), LookBack(bucket, -1), LookBack(chunkOf, -1));
        var logits = scores.logsumexp(-1, keepdim: true);
        var output = matmul((scores - logits).exp(), LookBack(values, 0));                   // [B, H, R, n, C, D]

        // Back to sequence order.
        var undo = order.argsort(-1);
        output = output.view(batch, heads, rounds, padded, dim).narrow(3, 0, length)
            .gather(3, undo.unsqueeze(-1).expand(batch, heads, rounds, length, dim));
        logits = logits.view(batch, heads, rounds, padded).narrow(3, 0, length).gather(3, undo);
        return (output, logits);
    }

    /// <summary>Index of each sorted position within its bucket: its sorted rank minus the number of positions in lower buckets.</summary>
    Tensor WithinBucketIndex(Tensor buckets, Tensor sortedBuckets, long length)
    {
        var counts = zeros([.. buckets.shape[..^1], NumBuckets], dtype: ScalarType.Int64, device: buckets.device)
            .scatter_add(-1, buckets, ones_like(buckets));
        var starts = counts.cumsum(-1) - counts;
        return arange(length, device: buckets.device) - starts.gather(-1, sortedBuckets);
    }

    /// <summary>Blocks [.., blocks, C, ...] → [.., blocks, 3C, ...]: each preceded by the two blocks before it (padding before the first).</summary>
    static Tensor LookBack(Tensor t, double padValue)
    {
        const int blockDim = 3;
        var before1 = nn.functional.pad(t.narrow(blockDim, 0, t.shape[blockDim] - 1), Padding(t, blockDim), value: padValue);
        var before2 = t.shape[blockDim] > 2
            ? nn.functional.pad(t.narrow(blockDim, 0, t.shape[blockDim] - 2), Padding(t, blockDim, 2), value: padValue)
            : full_like(t, padValue);
        return cat([before2, before1, t], blockDim + 1);
    }

    /// <summary>F.pad amounts that add <paramref name="count"/> entries in front of dimension <paramref name="dim"/>.</summary>
    static long[] Padding(Tensor t, int dim, long count = 1)
    {
        var pad = new long[2 * (t.dim() - dim)];
        pad[^2] = count;
        return pad;
    }

    /// <summary>
    /// Masks raw scores q·k [.., queries, keys]: a key counts if it is in the query's bucket, not later, and in the
    /// query's chunk of that bucket or the one before; otherwise -1e9. The query's own position scores -1e5.
    /// </summary>
    internal Tensor Scores(Tensor dots, Tensor queryPos, Tensor queryBucket, Tensor queryChunk, Tensor keyPos, Tensor keyBucket, Tensor keyChunk)
    {
        Tensor Q(Tensor t) => t.unsqueeze(-1);
        Tensor K(Tensor t) => t.unsqueeze(-2);
        var visible = K(keyBucket).eq(Q(queryBucket))
            .logical_and(K(keyPos).le(Q(queryPos)))
            .logical_and(K(keyChunk).ge(Q(queryChunk) - 1));
        var (selfValue, maskValue) = MaskValues(dots.dtype);
        dots = dots.masked_fill(visible.logical_not(), maskValue);
        return dots.masked_fill(K(keyPos).eq(Q(queryPos)).logical_and(K(keyBucket).eq(Q(queryBucket))), selfValue);
    }

    /// <summary>Hugging Face's mask values: its float16 buffers for half precision, its float32 ones otherwise.</summary>
    (double Self, double Masked) MaskValues(ScalarType dtype) =>
        dtype is ScalarType.Float16 or ScalarType.BFloat16
            ? (Value("self_mask_value_float16"), Value("mask_value_float16"))
            : (Value("self_mask_value_float32"), Value("mask_value_float32"));

    double Value(string buffer) => get_buffer(buffer)!.to_type(ScalarType.Float64).item<double>();

    /// <summary>Keys are the shared query/key vectors normalised to unit root-mean-square, then scaled by 1/√dim_head.</summary>
    internal Tensor KeyNorm(Tensor x) => x * (x.square().mean([-1], keepdim: true) + 1e-6).rsqrt() * Math.Pow(DimHead, -0.5);

    /// <summary>Rounds' outputs [B, H, R, n, D] weighted by softmax over rounds of their log-sum-exp [B, H, R, n].</summary>
    static Tensor CombineRounds(Tensor output, Tensor logits)
    {
        if (output.shape[2] == 1) return output.squeeze(2);
        var weights = (logits - logits.logsumexp(2, keepdim: true)).exp().unsqueeze(-1);
        return (output * weights).sum(2);
    }

    /// <summary>GPT-J rotary embedding (the CodeGen functions Archai's Reformer copy calls): pairs (x0, x1) of
    /// features rotated by angle position · 10000^(-2i/D), positions offset .. offset+n-1. x: [B, n, H, D].</summary>
    Tensor Rotary(Tensor x, long offset)
    {
        var n = x.shape[1];
        var invFreq = 1.0 / pow(10000.0, arange(0, DimHead, 2, dtype: ScalarType.Float64, device: x.device) / DimHead);
        var angles = outer(arange(offset, offset + n, dtype: ScalarType.Float64, device: x.device), invFreq)
            .repeat_interleave(2, -1).to_type(x.dtype).view(1, n, 1, DimHead);
        var pairs = x.view([.. x.shape[..^1], DimHead / 2, 2]);
        var rotated = stack([-pairs.select(-1, 1), pairs.select(-1, 0)], -1).view(x.shape);
        return x * angles.cos() + rotated * angles.sin();
    }

    /// <summary>A fresh decoding state.</summary>
    public LshState NewState() => new();

    /// <summary>
    /// Decoding state: the shared query/key vectors, values, buckets and within-bucket chunks of every position so far,
    /// and each bucket's count. New positions attend over all kept ones with the same masks as a whole sequence.
    /// </summary>
    public sealed class LshState : TokenMixerState
    {
        internal (Tensor Output, Tensor Logits) Attend(LshSelfAttention a, Tensor qk, Tensor v, Tensor buckets)
        {
            long n = qk.shape[2], offset = Length;
            var device = qk.device;

            // Within-bucket numbers of the new positions: the bucket's count so far plus the new ones before them.
            var counts = Get("counts") ?? zeros([.. buckets.shape[..^1], a.NumBuckets], dtype: ScalarType.Int64, device: device);
            var oneHot = nn.functional.one_hot(buckets, a.NumBuckets);                        // [B, H, R, n, NB]
            var before = oneHot.cumsum(3) - oneHot;
            var inBucket = (counts.unsqueeze(3) + before).gather(-1, buckets.unsqueeze(-1)).squeeze(-1);
            var chunk = inBucket.div(a.ChunkLength, rounding_mode: RoundingMode.floor);

            var keys = Append("qk", qk, 2);
            var values = Append("v", v, 2);
            var keyBuckets = Append("buckets", buckets, 3);
            var keyChunks = Append("chunks", chunk, 3);
            Set("counts", counts + oneHot.sum(3));
            Advance(n);

            var queryPos = arange(offset, offset + n, device: device).expand_as(buckets);
            var keyPos = arange(offset + n, device: device).expand_as(keyBuckets);
            var dots = matmul(qk, a.KeyNorm(keys).transpose(-1, -2)).unsqueeze(2);          // [B, H, 1, n, T]
            var scores = a.Scores(dots, queryPos, buckets, chunk, keyPos, keyBuckets, keyChunks);
            var logits = scores.logsumexp(-1, keepdim: true);
            var output = matmul((scores - logits).exp(), values.unsqueeze(2));               // [B, H, R, n, D]
            return (output, logits.squeeze(-1));
        }

        Tensor Append(string name, Tensor t, int dim)
        {
            var all = Get(name) is { } past ? cat([past, t], dim) : t;
            Set(name, all);
            return all;
        }
    }
}
