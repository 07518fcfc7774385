using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>A trainable parameter under its (first) state-dict name.</summary>
public sealed record NamedParameter(string Name, Parameter Parameter);

/// <summary>Parameters that share optimizer settings.</summary>
public sealed record ParameterGroup(string Name, double WeightDecay, IReadOnlyList<NamedParameter> Parameters);

/// <summary>
/// Splits a model's trainable parameters into a weight-decay group (matrices of linear layers, attention projections)
/// and a no-decay group: 1-D tensors (LayerNorm/RMSNorm/ScaleNorm gains, biases, scalars), embedding tables (every
/// <c>nn.Embedding</c>: token, absolute position, T5 relative-position buckets) and learned memories
/// (<c>memory_tokens</c>, <c>mem_k</c>, <c>mem_v</c>). Decaying those only pulls them towards zero for no benefit.
/// </summary>
public static class ParameterGroups
{
    static readonly string[] MemoryNames = { "memory_tokens", "mem_k", "mem_v" };

    /// <summary>Every trainable parameter once: tied weights (one tensor under two names) keep their first name.</summary>
    public static IReadOnlyList<NamedParameter> Unique(nn.Module model)
    {
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        var result = new List<NamedParameter>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad || !seen.Add(p)) continue;
            result.Add(new NamedParameter(name, p));
        }
        return result;
    }

    /// <summary>Whether <paramref name="name"/> is exempt from weight decay (see the class summary).</summary>
    public static bool IsNoDecay(string name, Tensor parameter, ISet<string> embeddingWeights) =>
        parameter.dim() < 2 || embeddingWeights.Contains(name) || MemoryNames.Contains(name.Split('.')[^1]);

    public static IReadOnlyList<ParameterGroup> Split(nn.Module model, double weightDecay)
    {
        var embeddingWeights = new HashSet<string>(StringComparer.Ordinal);
        // TorchSharp's named_modules() leaves out the module itself (PyTorch's lists it as ""): a bare embedding counts too.
        foreach (var (moduleName, module) in model.named_modules().Prepend(("", model)))
            if (module is Embedding)
                foreach (var (pName, _) in module.named_parameters())
                    embeddingWeights.Add(moduleName.Length == 0 ? pName : $"{moduleName}.{pName}");

        var decay = new List<NamedParameter>();
        var noDecay = new List<NamedParameter>();
        foreach (var np in Unique(model))
            (IsNoDecay(np.Name, np.Parameter, embeddingWeights) ? noDecay : decay).Add(np);
        if (decay.Count + noDecay.Count == 0) throw new ArgumentException("the model has no trainable parameters");
        return new[] { new ParameterGroup("decay", weightDecay, decay), new ParameterGroup("no_decay", 0, noDecay) };
    }
}
