using System.Text.Json;
using TorchSharp;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Parity;

/// <summary>
/// labml's Primer EZ and Feedback Transformer fixtures. labml's tensors are <c>[seq, batch, d_model]</c> and ours
/// <c>[batch, seq, d_model]</c>, so the input is transposed on the way in and the output on the way out. Weights are
/// renamed with each module's <c>FromLabmlName</c>.
/// </summary>
public static class LabmlCases
{
    public static ParityCall Prepare(string dir, string module, JsonElement c)
    {
        var dModel = c.GetProperty("d_model").GetInt32();
        var heads = c.GetProperty("heads").GetInt32();
        var inputs = CaseKinds.Inputs(dir);
        var weights = Path.Combine(dir, "weights.safetensors");

        Func<nn.Module<Tensor, Tensor>> build;
        Func<string, string> rename;
        if (module == "labml MultiDConvHeadAttention")
        {
            // The fixture's mask is causal: exactly what the self-attention forward applies.
            build = () => new MultiDConvHeadAttention(dModel, heads, DConvKernelLayout.SharedByHeads);
            rename = MultiDConvHeadAttention.FromLabmlName;
        }
        else if (module.StartsWith("labml FeedbackTransformer", StringComparison.Ordinal))
        {
            var sharedKeyValues = module.StartsWith("labml FeedbackTransformerKV", StringComparison.Ordinal);
            var (dFf, layers) = (c.GetProperty("d_ff").GetInt32(), c.GetProperty("n_layers").GetInt32());
            build = () => new FeedbackTransformer(dModel, heads, dFf, layers, sharedKeyValues);
            rename = FeedbackTransformer.FromLabmlName;
        }
        else throw new NotSupportedException($"labml module '{module}'");

        return (dtype, device) =>
        {
            var model = build();
            LoadRenamed(model, weights, rename);
            model.to(dtype).to(device);
            model.eval();
            var output = model.forward(inputs(device, "x", dtype).transpose(0, 1));
            return (model, new() { ["out"] = output.transpose(0, 1) });
        };
    }

    static void LoadRenamed(nn.Module model, string path, Func<string, string> rename)
    {
        var tensors = SafeTensorsTorch.Load(path);
        try { StateDict.Load(model, tensors.ToDictionary(t => rename(t.Key), t => t.Value), path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }
}
