using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.IO;

/// <summary>How strictly weight dtypes must match the model's when loading.</summary>
public enum WeightDTypePolicy
{
    /// <summary>Every tensor must have exactly its parameter's dtype (a cast can change values: F32 bytes labelled I32 are not weights).</summary>
    Exact,
    /// <summary>Also accept F16 and BF16 weights for F32 parameters (a lossless widening), listed in the load report.</summary>
    UpcastHalfToFloat32,
}

/// <summary>What a load did beyond a plain copy: the tensors widened from F16/BF16 to F32 (name → file dtype).</summary>
public sealed record StateDictLoadReport(IReadOnlyDictionary<string, string> Upcast)
{
    public static StateDictLoadReport None { get; } = new(new Dictionary<string, string>());

    /// <summary>One line for users, e.g. <c>upcast 12 tensors from BF16 to F32</c>; null when nothing was widened.</summary>
    public string? Summary => Upcast.Count == 0 ? null
        : $"upcast {Upcast.Count} tensor{(Upcast.Count == 1 ? "" : "s")} from {string.Join("/", Upcast.Values.Distinct().Order())} to F32";
}

/// <summary>Moves weights between a module and name→tensor maps, with x-transformers' names and strict checking.</summary>
public static class StateDict
{
    /// <summary>
    /// Copies every tensor of <paramref name="tensors"/> into the module's parameter or buffer of the same name (on its
    /// device). Missing or unexpected names, shape mismatches and dtype mismatches (see <paramref name="policy"/>) are an
    /// error that lists them all; nothing is copied then.
    /// </summary>
    public static StateDictLoadReport Load(nn.Module model, IReadOnlyDictionary<string, Tensor> tensors, string source,
        WeightDTypePolicy policy = WeightDTypePolicy.Exact)
    {
        var target = model.state_dict();
        var missing = target.Keys.Where(k => !tensors.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var unexpected = tensors.Keys.Where(k => !target.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var present = target.Keys.Where(tensors.ContainsKey).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var badShapes = present
            .Where(k => !target[k].shape.SequenceEqual(tensors[k].shape))
            .Select(k => $"{k}: model [{string.Join(", ", target[k].shape)}], file [{string.Join(", ", tensors[k].shape)}]")
            .ToList();
        var upcast = new Dictionary<string, string>(StringComparer.Ordinal);
        var badTypes = new List<string>();
        foreach (var k in present)
        {
            var (want, have) = (target[k].dtype, tensors[k].dtype);
            if (want == have) continue;
            if (policy == WeightDTypePolicy.UpcastHalfToFloat32 && want == ScalarType.Float32 && have is ScalarType.Float16 or ScalarType.BFloat16)
                upcast[k] = Name(have);
            else
                badTypes.Add($"{k}: model {Name(want)}, file {Name(have)}");
        }
        if (missing.Count + unexpected.Count + badShapes.Count + badTypes.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing {missing.Count}: {string.Join(", ", missing)}");
            if (unexpected.Count > 0) parts.Add($"unexpected {unexpected.Count}: {string.Join(", ", unexpected)}");
            if (badShapes.Count > 0) parts.Add($"shape mismatch {badShapes.Count}: {string.Join("; ", badShapes)}");
            if (badTypes.Count > 0)
                parts.Add($"dtype mismatch {badTypes.Count}: {string.Join("; ", badTypes)}" +
                    (policy == WeightDTypePolicy.Exact && badTypes.Any(IsHalfIntoFloat) ? " (F16/BF16 into F32 can be allowed as an explicit upcast)" : ""));
            throw new InvalidDataException($"weights in {source} do not match the model: {string.Join("; ", parts)}");
        }
        using var _ = no_grad();
        foreach (var (name, t) in target) t.copy_(tensors[name]);
        return upcast.Count == 0 ? StateDictLoadReport.None : new StateDictLoadReport(upcast);
    }

    public static StateDictLoadReport Load(nn.Module model, string safetensorsPath, WeightDTypePolicy policy = WeightDTypePolicy.Exact)
    {
        var tensors = SafeTensorsTorch.Load(safetensorsPath);
        try { return Load(model, tensors, safetensorsPath, policy); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Writes the module's parameters and persistent buffers (x-transformers' names) in their own dtypes.</summary>
    public static void Save(nn.Module model, string safetensorsPath, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafeTensorsTorch.Save(safetensorsPath, model.state_dict(), metadata);

    static string Name(ScalarType t)
    {
        try { return SafeTensorsTorch.ToSafeTensorDType(t).ToHeaderName(); }
        catch (NotSupportedException) { return t.ToString(); }
    }

    static bool IsHalfIntoFloat(string mismatch) => mismatch.EndsWith("model F32, file F16") || mismatch.EndsWith("model F32, file BF16");
}
