using System.Diagnostics;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Models;
using static TorchSharp.torch;

namespace TransformerForge.Benchmarks;

/// <summary>One measured configuration: tokens per second and wall time.</summary>
public sealed record BenchmarkRow(string Name, double TokensPerSecond, double Seconds, string Note = "");

/// <summary>Cached vs. uncached autoregressive generation of the same model (greedy, so both produce the same tokens).</summary>
public static class GenerationBenchmark
{
    public static IReadOnlyList<BenchmarkRow> Run(Device device, int newTokens = 512, int dim = 256, int depth = 4, int heads = 8,
        string positions = "rotary", Action<string>? log = null)
    {
        manual_seed(0);
        var layers = new AttentionLayersConfig { Type = LayerStackType.Decoder, Dim = dim, Depth = depth, Heads = heads, Attn = new AttentionOptions { DimHead = dim / heads } };
        layers = positions switch
        {
            "rotary" => layers with { RotaryPosEmb = true, Attn = layers.Attn with { DimHead = Math.Max(32, dim / heads) } },
            "alibi" => layers with { AlibiPosBias = true },
            "t5" => layers with { RelPosBias = true },
            "absolute" => layers,
            _ => throw new ArgumentException($"unknown positions '{positions}' (rotary, alibi, t5, absolute)"),
        };
        using var model = new TransformerWrapper(new TransformerWrapperConfig { NumTokens = 256, MaxSeqLen = newTokens + 64, AttnLayers = layers });
        return Measure(model, device, newTokens, log);
    }

    /// <summary>
    /// Cached vs. recomputed greedy generation of <paramref name="model"/> (moved to <paramref name="device"/>): a
    /// 16-token prompt, then <paramref name="newTokens"/> tokens, which must fit its max_seq_len.
    /// </summary>
    public static IReadOnlyList<BenchmarkRow> Measure(LanguageModel model, Device device, int newTokens, Action<string>? log = null)
    {
        const int promptLength = 16;
        if (promptLength + newTokens > model.MaxSeqLen)
            throw new ArgumentException($"a {promptLength}-token prompt and {newTokens} new tokens exceed the model's max_seq_len {model.MaxSeqLen}; ask for fewer --tokens");
        model.to(device).eval();
        manual_seed(0);
        var prompt = randint(0, model.NumTokens, new long[] { 1, promptLength }, device: device);

        var rows = new List<BenchmarkRow>();
        Tensor? reference = null;
        foreach (var useCache in new[] { true, false })
        {
            // Warm up (kernels, allocator), then time one full generation.
            Autoregressive.Generate(model, prompt, 8, new SamplingOptions { Greedy = true, UseCache = useCache });
            var sw = Stopwatch.StartNew();
            var output = Autoregressive.Generate(model, prompt, newTokens, new SamplingOptions { Greedy = true, UseCache = useCache });
            if (device.type == DeviceType.CUDA) cuda.synchronize();
            sw.Stop();
            bool same = reference is null || output.eq(reference).all().item<bool>();
            reference ??= output;
            var row = new BenchmarkRow(useCache ? "kv-cache" : "recompute", newTokens / sw.Elapsed.TotalSeconds, sw.Elapsed.TotalSeconds,
                same ? "" : "tokens differ from cached run");
            log?.Invoke($"{row.Name,-10} {row.TokensPerSecond,10:F1} tokens/s  {row.Seconds,7:F2} s {row.Note}");
            rows.Add(row);
        }
        return rows;
    }
}
