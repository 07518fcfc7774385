using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter 2019), the same update as PyTorch's <c>torch.optim.AdamW</c> (amsgrad off).
/// Written here rather than using TorchSharp's optimizer so that its state is explicit and keyed by parameter name:
/// a checkpoint stores <c>NAME.exp_avg</c>, <c>NAME.exp_avg_sq</c> and <c>NAME.step</c> for every parameter, and a
/// resumed run gets back exactly the tensors it had, whatever order the parameters are enumerated in.
/// <para>
/// Flat (the default): parameters, gradients and both moments live in one buffer per dtype and device
/// (<see cref="FlatParameters"/>), so a step is about ten operations whatever the number of tensors, where the
/// per-tensor layout takes about ten per tensor (~600 for a 4-layer decoder, each waking libtorch's threads). In the
/// flat layout every parameter always has a gradient (zero when the backward pass did not reach it) and one step count
/// per buffer; the per-tensor layout leaves parameters without a gradient alone, as PyTorch does.
/// </para>
/// </summary>
public sealed class AdamW : IDisposable
{
    /// <summary>One parameter and, in the per-tensor layout, its own moments and step count.</summary>
    sealed class Slot(NamedParameter p, double weightDecay)
    {
        public NamedParameter Param { get; } = p;
        public double WeightDecay { get; } = weightDecay;
        public Tensor? ExpAvg, ExpAvgSq;
        public long Step;
        /// <summary>Flat layout: the bucket and place of this parameter.</summary>
        public Bucket? Bucket;
        public FlatSlot? Place;
    }

    /// <summary>Flat layout: parameters of one dtype and device, their moments and a scratch buffer for the denominator.</summary>
    sealed class Bucket(FlatParameters flat) : IDisposable
    {
        public FlatParameters Flat { get; } = flat;
        public Tensor ExpAvg { get; } = zeros_like(flat.Values).DetachFromDisposeScope();
        public Tensor ExpAvgSq { get; } = zeros_like(flat.Values).DetachFromDisposeScope();
        public Tensor Denominator { get; } = empty_like(flat.Values).DetachFromDisposeScope();
        public long Step;

        public void Dispose()
        {
            Flat.Dispose();
            ExpAvg.Dispose();
            ExpAvgSq.Dispose();
            Denominator.Dispose();
        }
    }

    readonly List<Slot> _slots;
    readonly List<Bucket> _buckets = new();
    readonly double _beta1, _beta2, _eps;

    /// <param name="flat">Lay parameters, gradients and moments out in flat buffers (see the class summary).</param>
    public AdamW(IEnumerable<ParameterGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, bool flat = true)
    {
        _beta1 = beta1;
        _beta2 = beta2;
        _eps = eps;
        IsFlat = flat;
        using var _ = no_grad();
        _slots = groups.SelectMany(g => g.Parameters.Select(p => new Slot(p, g.WeightDecay))).ToList();
        var duplicate = _slots.GroupBy(s => s.Param.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"parameter '{duplicate.Key}' is in more than one group");
        if (_slots.Count == 0) throw new ArgumentException("no parameters to optimize");

        if (!flat)
        {
            foreach (var s in _slots)
            {
                s.ExpAvg = zeros_like(s.Param.Parameter).DetachFromDisposeScope();
                s.ExpAvgSq = zeros_like(s.Param.Parameter).DetachFromDisposeScope();
            }
            return;
        }
        // One bucket per dtype and device; inside it, the groups' order is kept so that each group is one range.
        foreach (var same in _slots.GroupBy(s => (s.Param.Parameter.dtype, s.Param.Parameter.device.ToString())))
        {
            var members = same.ToList();
            var bucket = new Bucket(new FlatParameters(members.Select(s => (s.Param.Name, s.Param.Parameter, s.WeightDecay)).ToList()));
            _buckets.Add(bucket);
            for (int i = 0; i < members.Count; i++)
            {
                members[i].Bucket = bucket;
                members[i].Place = bucket.Flat.Slots[i];
            }
        }
    }

    /// <summary>Flat layout: elements updated per group of operations (0: the whole buffer at once).</summary>
    public long ChunkElements { get; set; } = DefaultChunkElements;
    public const long DefaultChunkElements = 1 << 20;

    /// <summary>Whether parameters, gradients and moments are in flat buffers.</summary>
    public bool IsFlat { get; }

    public IEnumerable<Parameter> Parameters => _slots.Select(s => s.Param.Parameter);

    /// <summary>Flat layout: the buffers (one per dtype and device), so a caller can read or fill all gradients at once.</summary>
    public IReadOnlyList<FlatParameters> FlatBuffers => _buckets.Select(b => b.Flat).ToList();

    public void ZeroGrad()
    {
        if (IsFlat)
        {
            foreach (var b in _buckets) b.Flat.Gradients.zero_();
            return;
        }
        // Each .grad read makes a new tensor handle; the scope frees them.
        using var scope = NewDisposeScope();
        foreach (var s in _slots) s.Param.Parameter.grad?.zero_();
    }

    /// <summary>
    /// The global L2 norm of all gradients, as a scalar on the device (reading it would wait for the device); when it
    /// exceeds <paramref name="maxNorm"/> the gradients are scaled down to that norm, as <c>torch.nn.utils.clip_grad_norm_</c>
    /// does (factor maxNorm / (norm + 1e-6), at most 1). An infinite <paramref name="maxNorm"/> only measures.
    /// The caller disposes the result (or lets its dispose scope do it).
    /// </summary>
    public Tensor ClipGradNorm(double maxNorm)
    {
        var grads = IsFlat ? _buckets.Select(b => b.Flat.Gradients).ToList()
            : _slots.Select(s => s.Param.Parameter.grad).OfType<Tensor>().ToList();
        if (grads.Count == 0) return zeros(Array.Empty<long>());
        Tensor norm;
        using (var scope = NewDisposeScope())
        {
            using var _ = no_grad();
            norm = grads.Count == 1 ? grads[0].norm() : stack(grads.Select(g => g.norm().to(grads[0].device))).norm();
            if (!double.IsPositiveInfinity(maxNorm))
            {
                var factor = (maxNorm / (norm + 1e-6)).clamp_max_(1.0);
                foreach (var g in grads) g.mul_(factor.to(g.device));
            }
            norm.MoveToOuterDisposeScope();
        }
        return norm;
    }

    /// <summary>One update with learning rate <paramref name="lr"/>; per-tensor layout: parameters without a gradient are left alone.</summary>
    public void Step(double lr)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        if (IsFlat)
        {
            foreach (var b in _buckets)
            {
                b.Step++;
                foreach (var (offset, length, wd) in b.Flat.Ranges)
                    if (wd != 0) b.Flat.Values.narrow(0, offset, length).mul_(1 - lr * wd);
                // In cache-sized chunks: each operation streams its buffers through memory, and five buffers of a few
                // million parameters do not fit in cache; a chunk's operations reuse what the previous one brought in.
                long n = b.Flat.Count, chunk = ChunkElements > 0 ? ChunkElements : n;
                for (long start = 0; start < n; start += chunk)
                {
                    long length = Math.Min(chunk, n - start);
                    Update(b.Flat.Values.narrow(0, start, length), b.Flat.Gradients.narrow(0, start, length), b.ExpAvg.narrow(0, start, length),
                        b.ExpAvgSq.narrow(0, start, length), b.Denominator.narrow(0, start, length), b.Step, lr);
                }
            }
            return;
        }
        foreach (var s in _slots)
        {
            var p = s.Param.Parameter;
            var g = p.grad;
            if (g is null) continue;
            s.Step++;
            if (s.WeightDecay != 0) p.mul_(1 - lr * s.WeightDecay);
            Update(p, g, s.ExpAvg!, s.ExpAvgSq!, null, s.Step, lr);
        }
    }

    /// <summary>Adam's moment updates and bias-corrected step (decoupled weight decay is applied before).</summary>
    void Update(Tensor p, Tensor g, Tensor expAvg, Tensor expAvgSq, Tensor? scratch, long step, double lr)
    {
        expAvg.mul_(_beta1).add_(g, alpha: 1 - _beta1);
        expAvgSq.mul_(_beta2).addcmul_(g, g, value: 1 - _beta2);
        double bias1 = 1 - Math.Pow(_beta1, step);
        double bias2 = 1 - Math.Pow(_beta2, step);
        // The flat layout reuses one buffer for the denominator instead of allocating (and page-faulting) it each step.
        var denom = scratch is null ? expAvgSq.sqrt() : scratch.copy_(expAvgSq).sqrt_();
        denom.div_(Math.Sqrt(bias2)).add_(_eps);
        p.addcdiv_(expAvg, denom, value: -lr / bias1);
    }

    /// <summary>The state as CPU tensors named <c>PARAM.exp_avg</c>, <c>PARAM.exp_avg_sq</c>, <c>PARAM.step</c> (int64 scalar); the caller disposes them.</summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var scope = NewDisposeScope();
        foreach (var s in _slots)
        {
            var (m, v, step) = State(s);
            result[s.Param.Name + ".exp_avg"] = m.detach().cpu().clone().DetachFromDisposeScope();
            result[s.Param.Name + ".exp_avg_sq"] = v.detach().cpu().clone().DetachFromDisposeScope();
            result[s.Param.Name + ".step"] = full(Array.Empty<long>(), step, dtype: ScalarType.Int64).DetachFromDisposeScope();
        }
        return result;
    }

    /// <summary>A parameter's moments (views into the flat buffers in the flat layout) and step count.</summary>
    static (Tensor ExpAvg, Tensor ExpAvgSq, long Step) State(Slot s) => s.Bucket is { } b
        ? (FlatParameters.View(b.ExpAvg, s.Place!), FlatParameters.View(b.ExpAvgSq, s.Place!), b.Step)
        : (s.ExpAvg!, s.ExpAvgSq!, s.Step);

    /// <summary>
    /// Restores <see cref="StateTensors"/>; every parameter must be present with matching shapes, and nothing else.
    /// The flat layout keeps one step count per buffer, so the parameters sharing one must have the same step.
    /// </summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        var expected = new HashSet<string>(StateKeys(), StringComparer.Ordinal);
        var missing = expected.Where(k => !state.ContainsKey(k)).OrderBy(k => k).ToList();
        var unexpected = state.Keys.Where(k => !expected.Contains(k)).OrderBy(k => k).ToList();
        if (missing.Count + unexpected.Count > 0)
            throw new InvalidDataException($"optimizer state in {source} does not match the model: " +
                string.Join("; ", new[] { missing.Count > 0 ? $"missing {string.Join(", ", missing)}" : null,
                    unexpected.Count > 0 ? $"unexpected {string.Join(", ", unexpected)}" : null }.Where(x => x is not null)));
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var bucketSteps = new Dictionary<Bucket, (long Step, string Name)>();
        foreach (var s in _slots)
        {
            var m = state[s.Param.Name + ".exp_avg"];
            var v = state[s.Param.Name + ".exp_avg_sq"];
            var (expAvg, expAvgSq, _) = State(s);
            if (!m.shape.SequenceEqual(expAvg.shape) || !v.shape.SequenceEqual(expAvgSq.shape))
                throw new InvalidDataException($"optimizer state in {source}: '{s.Param.Name}' has shape [{string.Join(", ", (m.shape.SequenceEqual(expAvg.shape) ? v : m).shape)}], " +
                    $"the parameter [{string.Join(", ", expAvg.shape)}]");
            var step = state[s.Param.Name + ".step"].to_type(ScalarType.Int64).item<long>();
            if (s.Bucket is { } b)
            {
                if (bucketSteps.TryGetValue(b, out var seen) && seen.Step != step)
                    throw new InvalidDataException($"optimizer state in {source}: '{s.Param.Name}' is at step {step} but '{seen.Name}' at step " +
                        $"{seen.Step}; the flat optimizer keeps one step for all parameters (load it with the per-tensor layout)");
                bucketSteps[b] = (step, s.Param.Name);
            }
            expAvg.copy_(m);
            expAvgSq.copy_(v);
            s.Step = step;
        }
        foreach (var (b, (step, _)) in bucketSteps) b.Step = step;
    }

    IEnumerable<string> StateKeys() => _slots.SelectMany(s => new[] { s.Param.Name + ".exp_avg", s.Param.Name + ".exp_avg_sq", s.Param.Name + ".step" });

    public void Dispose()
    {
        foreach (var s in _slots)
        {
            s.ExpAvg?.Dispose();
            s.ExpAvgSq?.Dispose();
        }
        foreach (var b in _buckets) b.Dispose();
    }
}
