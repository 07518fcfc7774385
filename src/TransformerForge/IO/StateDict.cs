using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.IO;

/// <summary>Moves weights between a module and name→tensor maps, with x-transformers' names and strict checking.</summary>
public static class StateDict
{
    /// <summary>
    /// Copies every tensor of <paramref name="tensors"/> into the module's parameter or buffer of the same name (casting
    /// to its dtype and device). Missing or unexpected names, and shape mismatches, are an error that lists them all.
    /// </summary>
    public static void Load(nn.Module model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var target = model.state_dict();
        var missing = target.Keys.Where(k => !tensors.ContainsKey(k)).OrderBy(k => k).ToList();
        var unexpected = tensors.Keys.Where(k => !target.ContainsKey(k)).OrderBy(k => k).ToList();
        var badShapes = target.Keys.Where(tensors.ContainsKey)
            .Where(k => !target[k].shape.SequenceEqual(tensors[k].shape))
            .Select(k => $"{k}: model [{string.Join(", ", target[k].shape)}], file [{string.Join(", ", tensors[k].shape)}]")
            .ToList();
        if (missing.Count + unexpected.Count + badShapes.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing {missing.Count}: {string.Join(", ", missing)}");
            if (unexpected.Count > 0) parts.Add($"unexpected {unexpected.Count}: {string.Join(", ", unexpected)}");
            if (badShapes.Count > 0) parts.Add($"shape mismatch {badShapes.Count}: {string.Join("; ", badShapes)}");
            throw new InvalidDataException($"weights in {source} do not match the model: {string.Join("; ", parts)}");
        }
        using var _ = no_grad();
        foreach (var (name, t) in target) t.copy_(tensors[name]);
    }

    public static void Load(nn.Module model, string safetensorsPath)
    {
        var tensors = SafeTensorsTorch.Load(safetensorsPath);
        try { Load(model, tensors, safetensorsPath); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Writes the module's parameters and persistent buffers (x-transformers' names) as float tensors.</summary>
    public static void Save(nn.Module model, string safetensorsPath, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafeTensorsTorch.Save(safetensorsPath, model.state_dict(), metadata);
}
