using System.Text.Json;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Parity;

/// <summary>
/// labml's Primer EZ and Feedback Transformer fixtures. labml's tensors are <c>[seq, batch, d_model]</c> and ours
/// <c>[batch, seq, dim]</c>, so the input is transposed on the way in and the output on the way out. labml's weight
/// names are mapped onto the modules users run: Primer's attention is <see cref="Attention"/> itself, with the options
/// <see cref="PrimerOptions"/> gives it.
/// </summary>
public static class LabmlCases
{
    public static ParityCall Prepare(string dir, string module, JsonElement c)
    {
        // labml's names: d_model is the width; d_k = d_model / heads the head width; n_layers the depth; d_ff the hidden width.
        var dim = c.GetProperty("d_model").GetInt32();
        var heads = c.GetProperty("heads").GetInt32();
        var inputs = CaseKinds.Inputs(dir);
        var weights = Path.Combine(dir, "weights.safetensors");

        if (module == "labml MultiDConvHeadAttention")
            // The fixture's mask is causal: exactly what a causal self-attention applies.
            return Case(() => new Attention(dim, heads, causal: true, PrimerOptions(dim, heads)),
                (m, x) => m.Forward(x, new BlockInputs()).Output, PrimerName, weights, inputs);
        if (module.StartsWith("labml FeedbackTransformer", StringComparison.Ordinal))
        {
            var sharedKeyValues = module.StartsWith("labml FeedbackTransformerKV", StringComparison.Ordinal);
            var (ffInnerDim, depth) = (c.GetProperty("d_ff").GetInt32(), c.GetProperty("n_layers").GetInt32());
            return Case(() => new FeedbackTransformer(dim, heads, ffInnerDim, depth, sharedKeyValues),
                (m, x) => m.forward(x), FeedbackTransformer.FromLabmlName, weights, inputs);
        }
        throw new NotSupportedException($"labml module '{module}'");
    }

    /// <summary>
    /// labml's <c>MultiDConvHeadAttention</c> as <see cref="Attention"/> options (the JSON keys in brackets): heads of
    /// d_model / heads features, a depth-wise convolution of width 3 after each projection with one kernel per channel
    /// of a head shared by all heads (<c>attn_dconv</c>, <c>attn_dconv_shared_heads</c>), and biased query, key and
    /// value projections (<c>attn_qkv_bias</c>).
    /// </summary>
    public static AttentionOptions PrimerOptions(int dim, int heads) => new()
    {
        DimHead = dim / heads, Dconv = true, DconvKernelSize = 3, DconvSharedHeads = true, QkvBias = true,
    };

    /// <summary>labml's Primer attention names → <see cref="Attention"/>'s (x-transformers') names.</summary>
    static readonly (string Labml, string Ours)[] PrimerNames =
    {
        ("query.0.linear.", "to_q."), ("key.0.linear.", "to_k."), ("value.0.linear.", "to_v."),
        ("query.1.conv.", "to_q_dconv."), ("key.1.conv.", "to_k_dconv."), ("value.1.conv.", "to_v_dconv."),
        ("output.", "to_out."),
    };

    /// <summary>Maps a labml <c>MultiDConvHeadAttention</c> state_dict name, e.g. <c>key.1.conv.weight</c> → <c>to_k_dconv.weight</c>.</summary>
    public static string PrimerName(string labmlName)
    {
        foreach (var (labml, ours) in PrimerNames)
            if (labmlName.StartsWith(labml, StringComparison.Ordinal)) return ours + labmlName[labml.Length..];
        return labmlName;
    }

    static ParityCall Case<T>(Func<T> build, Func<T, Tensor, Tensor> call, Func<string, string> rename, string weights,
        Func<Device, string, ScalarType, Tensor> inputs) where T : nn.Module => (dtype, device) =>
    {
        var model = build();
        LoadRenamed(model, weights, rename);
        model.to(dtype).to(device);
        model.eval();
        var output = call(model, inputs(device, "x", dtype).transpose(0, 1));
        return (model, new() { ["out"] = output.transpose(0, 1) });
    };

    static void LoadRenamed(nn.Module model, string path, Func<string, string> rename)
    {
        var tensors = SafeTensorsTorch.Load(path);
        try { StateDict.Load(model, tensors.ToDictionary(t => rename(t.Key), t => t.Value), path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }
}
