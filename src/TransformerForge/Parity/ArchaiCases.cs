using System.Text.Json;
using TorchSharp;
using TransformerForge.IO;
using TransformerForge.Modules.TokenMixers;
using static TorchSharp.torch;

namespace TransformerForge.Parity;

/// <summary>
/// Archai's Transformer++ fixtures: a single token mixer (<c>op</c>, with its <c>arch_config</c> and head counts) or a
/// <c>MixedAttentionBlock</c> (<c>block</c>, with <c>op_allocation</c> and one arch config per op). Weights carry
/// Archai's names as they are; the call is <c>out = mixer(x)</c> on <c>in.x</c> [B, L, hidden].
/// </summary>
public static class ArchaiCases
{
    public static ParityCall PrepareOp(string dir, string op, JsonElement c)
    {
        var options = Options(c);
        var arch = c.TryGetProperty("arch_config", out var a) && a.ValueKind == JsonValueKind.Object ? a : (JsonElement?)null;
        options = WithArchConfig(options, op, arch);
        var heads = c.GetProperty("op_heads").GetInt32();
        return Prepare(dir, () => TokenMixerFactory.Create(op, heads, options));
    }

    public static ParityCall PrepareBlock(string dir, string block, JsonElement c)
    {
        if (block != "MixedAttentionBlock") throw new NotSupportedException($"Archai block '{block}'");
        var options = Options(c);
        var allocation = new List<(string, double)>();
        foreach (var pair in c.GetProperty("op_allocation").EnumerateArray())
        {
            var op = pair[0].GetString() ?? "";
            allocation.Add((op, pair[1].GetDouble()));
            JsonElement? arch = c.TryGetProperty(op, out var a) && a.ValueKind == JsonValueKind.Object ? a : null;
            options = WithArchConfig(options, op, arch);
        }
        return Prepare(dir, () => MixedAttentionBlock.Create(MixedAttentionBlock.HeadsFromShares(allocation, options.Heads), options));
    }

    static ParityCall Prepare(string dir, Func<nn.Module<Tensor, Tensor>> build)
    {
        var inputs = CaseKinds.Inputs(dir);
        var weights = Path.Combine(dir, "weights.safetensors");
        return (dtype, device) =>
        {
            var model = build();
            StateDict.Load(model, weights);
            model.to(dtype).to(device);
            model.eval();
            return (model, new() { ["out"] = model.forward(inputs(device, "x", dtype)) });
        };
    }

    static TokenMixerOptions Options(JsonElement c)
    {
        var rotary = c.TryGetProperty("rotary_dim", out var r) && r.ValueKind == JsonValueKind.Number ? r.GetInt32() : 0;
        return new TokenMixerOptions
        {
            Dim = c.GetProperty("hidden_size").GetInt32(),
            Heads = c.GetProperty("total_heads").GetInt32(),
            MaxSeqLen = c.GetProperty("max_position_embeddings").GetInt32(),
            RotaryDim = rotary,
        };
    }

    /// <summary>The op's own arch config values (Archai ops with requires_extra_config); mha reads none.</summary>
    static TokenMixerOptions WithArchConfig(TokenMixerOptions options, string op, JsonElement? arch) => op switch
    {
        "sep_conv1d" => options with { SepConvKernelSize = Int(arch, "kernel_size") },
        "sgconv" => options with { SGConvKernelSize = Int(arch, "kernel_size") },
        "sgconv3" => options with { SGConv3KernelSize = Int(arch, "kernel_size") },
        "local_attn" => options with { LocalAttnWindowSize = Int(arch, "window_size") },
        "lsh_attn" => options with { LshNumHashes = Int(arch, "num_hashes"), LshBucketSize = Int(arch, "bucket_size") },
        _ => options,
    };

    static int Int(JsonElement? arch, string name) =>
        arch is { } a && a.TryGetProperty(name, out var v) ? v.GetInt32()
            : throw new InvalidDataException($"case.json: arch config has no '{name}'");
}
