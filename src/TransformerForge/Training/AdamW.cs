using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter 2019), the same update as PyTorch's <c>torch.optim.AdamW</c> (amsgrad off).
/// Written here rather than using TorchSharp's optimizer so that its state is explicit and keyed by parameter name:
/// a checkpoint stores <c>NAME.exp_avg</c>, <c>NAME.exp_avg_sq</c> and <c>NAME.step</c> for every parameter, and a
/// resumed run gets back exactly the tensors it had, whatever order the parameters are enumerated in.
/// </summary>
public sealed class AdamW : IDisposable
{
    sealed class Slot(NamedParameter p, double weightDecay)
    {
        public NamedParameter Param { get; } = p;
        public double WeightDecay { get; } = weightDecay;
        public Tensor ExpAvg { get; } = zeros_like(p.Parameter).DetachFromDisposeScope();
        public Tensor ExpAvgSq { get; } = zeros_like(p.Parameter).DetachFromDisposeScope();
        public long Step { get; set; }
    }

    readonly List<Slot> _slots;
    readonly double _beta1, _beta2, _eps;

    public AdamW(IEnumerable<ParameterGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        _beta1 = beta1;
        _beta2 = beta2;
        _eps = eps;
        using var _ = no_grad();
        _slots = groups.SelectMany(g => g.Parameters.Select(p => new Slot(p, g.WeightDecay))).ToList();
        var duplicate = _slots.GroupBy(s => s.Param.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"parameter '{duplicate.Key}' is in more than one group");
    }

    public IEnumerable<Parameter> Parameters => _slots.Select(s => s.Param.Parameter);

    public void ZeroGrad()
    {
        // Each .grad read makes a new tensor handle; the scope frees them.
        using var scope = NewDisposeScope();
        foreach (var s in _slots) s.Param.Parameter.grad?.zero_();
    }

    /// <summary>One update with learning rate <paramref name="lr"/>; parameters without a gradient are left alone.</summary>
    public void Step(double lr)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var s in _slots)
        {
            var p = s.Param.Parameter;
            var g = p.grad;
            if (g is null) continue;
            s.Step++;
            if (s.WeightDecay != 0) p.mul_(1 - lr * s.WeightDecay);
            s.ExpAvg.mul_(_beta1).add_(g, alpha: 1 - _beta1);
            s.ExpAvgSq.mul_(_beta2).addcmul_(g, g, value: 1 - _beta2);
            double bias1 = 1 - Math.Pow(_beta1, s.Step);
            double bias2 = 1 - Math.Pow(_beta2, s.Step);
            var denom = s.ExpAvgSq.sqrt().div_(Math.Sqrt(bias2)).add_(_eps);
            p.addcdiv_(s.ExpAvg, denom, value: -lr / bias1);
        }
    }

    /// <summary>The state as CPU tensors named <c>PARAM.exp_avg</c>, <c>PARAM.exp_avg_sq</c>, <c>PARAM.step</c> (int64 scalar); the caller disposes them.</summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var s in _slots)
        {
            result[s.Param.Name + ".exp_avg"] = s.ExpAvg.detach().cpu().clone();
            result[s.Param.Name + ".exp_avg_sq"] = s.ExpAvgSq.detach().cpu().clone();
            result[s.Param.Name + ".step"] = full(Array.Empty<long>(), s.Step, dtype: ScalarType.Int64);
        }
        return result;
    }

    /// <summary>Restores <see cref="StateTensors"/>; every parameter must be present with matching shapes, and nothing else.</summary>
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
        foreach (var s in _slots)
        {
            var m = state[s.Param.Name + ".exp_avg"];
            var v = state[s.Param.Name + ".exp_avg_sq"];
            if (!m.shape.SequenceEqual(s.ExpAvg.shape) || !v.shape.SequenceEqual(s.ExpAvgSq.shape))
                throw new InvalidDataException($"optimizer state in {source}: '{s.Param.Name}' has shape [{string.Join(", ", m.shape)}], " +
                    $"the parameter [{string.Join(", ", s.ExpAvg.shape)}]");
            s.ExpAvg.copy_(m);
            s.ExpAvgSq.copy_(v);
            s.Step = state[s.Param.Name + ".step"].to_type(ScalarType.Int64).item<long>();
        }
    }

    IEnumerable<string> StateKeys() => _slots.SelectMany(s => new[] { s.Param.Name + ".exp_avg", s.Param.Name + ".exp_avg_sq", s.Param.Name + ".step" });

    public void Dispose()
    {
        foreach (var s in _slots)
        {
            s.ExpAvg.Dispose();
            s.ExpAvgSq.Dispose();
        }
    }
}
