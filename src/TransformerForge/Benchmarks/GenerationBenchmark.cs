using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Models;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Benchmarks;

/// <summary>
/// One measured configuration: tokens per second (median of the repeats), its seconds, the CPU seconds the process spent
/// (median; all threads, user and system: the work, which load distorts less than wall-clock), and a note when something is off.
/// </summary>
public sealed record BenchmarkRow(string Name, double TokensPerSecond, double Seconds, string Note = "", double CpuSeconds = double.NaN)
{
    /// <summary>The line the side-by-side harness reads (benchmarks/pytorch/ prints the same keys).</summary>
    public string ResultLine(string stack, string model, string device, int newTokens, int repeats) =>
        FormattableString.Invariant(
            $"RESULT stack={stack} workload=generate-{Name} model={model} device={device} batch=1 tokens={newTokens} threads={get_num_threads()} repeats={repeats} tokens_per_s={TokensPerSecond:F1} ms_per_token={Seconds * 1e3 / newTokens:F3} cpu_ms_per_token={CpuSeconds * 1e3 / newTokens:F3}");
}

/// <summary>What <see cref="GenerationBenchmark"/> measures.</summary>
public sealed record GenerationBenchmarkOptions
{
    /// <summary>A decoder (TransformerWrapper or FeedbackTransformer); its max_seq_len must hold prompt and new tokens.</summary>
    public required ModelConfig Model { get; init; }
    public int PromptLength { get; init; } = 16;
    public int NewTokens { get; init; } = 512;
    /// <summary>Timed generations per path after one short warm-up; the median is reported.</summary>
    public int Repeats { get; init; } = 3;
    /// <summary>Also time recomputing the whole window every token (without the cache).</summary>
    public bool Recompute { get; init; } = true;
    public string Device { get; init; } = "cpu";
    public int Seed { get; init; } = 0;

    public void Validate()
    {
        if (PromptLength < 1) throw new ArgumentException($"prompt length must be positive, got {PromptLength}");
        if (NewTokens < 1) throw new ArgumentException($"new tokens must be positive, got {NewTokens}");
        if (Repeats < 1) throw new ArgumentException($"repeats must be positive, got {Repeats}");
    }

    /// <summary>The decoder <c>tforge bench generate</c> used before it took any model: dim 256, depth 4, 8 heads, the given positions.</summary>
    public static TransformerWrapperConfig DefaultModel(int newTokens, int dim = 256, int depth = 4, int heads = 8, string positions = "rotary")
    {
        var layers = new AttentionLayersConfig { Type = LayerStackType.Decoder, Dim = dim, Depth = depth, Heads = heads, Attn = new AttentionOptions { DimHead = dim / heads } };
        layers = positions switch
        {
            "rotary" => layers with { RotaryPosEmb = true, Attn = layers.Attn with { DimHead = Math.Max(32, dim / heads) } },
            "alibi" => layers with { AlibiPosBias = true },
            "t5" => layers with { RelPosBias = true },
            "absolute" => layers,
            _ => throw new ArgumentException($"unknown positions '{positions}' (rotary, alibi, t5, absolute)"),
        };
        return new TransformerWrapperConfig { NumTokens = 256, MaxSeqLen = newTokens + 64, AttnLayers = layers };
    }
}

/// <summary>Cached vs. uncached autoregressive generation of the same model (greedy, so both produce the same tokens), batch 1.</summary>
public static class GenerationBenchmark
{
    public static IReadOnlyList<BenchmarkRow> Run(GenerationBenchmarkOptions o, Action<string>? log = null)
    {
        o.Validate();
        var device = TorchRuntime.SelectDevice(o.Device);
        manual_seed(o.Seed);
        using var module = ModelFactory.Create(o.Model);
        var model = module as ILanguageModel ?? throw new ConfigException("type", $"bench generate needs a token decoder, got {o.Model.Type}");
        if (o.PromptLength + o.NewTokens > model.MaxSeqLen)
            throw new ArgumentException($"prompt {o.PromptLength} + {o.NewTokens} new tokens exceed the model's max_seq_len {model.MaxSeqLen}");
        module.to(device).eval();
        using var prompt = randint(0, model.NumTokens, new long[] { 1, o.PromptLength }, device: device);

        var rows = new List<BenchmarkRow>();
        Tensor? reference = null;
        try
        {
            foreach (var useCache in o.Recompute ? new[] { true, false } : new[] { true })
            {
                var sampling = new SamplingOptions { Greedy = true, UseCache = useCache };
                Autoregressive.Generate(model, prompt, Math.Min(8, o.NewTokens), sampling).Dispose();
                var times = new List<double>();
                var cpuTimes = new List<double>();
                string note = "";
                for (int i = 0; i < o.Repeats; i++)
                {
                    var clock = Stopwatch.StartNew();
                    var cpu = Environment.CpuUsage.TotalTime;
                    var output = Autoregressive.Generate(model, prompt, o.NewTokens, sampling);
                    if (device.type == DeviceType.CUDA) cuda.synchronize();
                    times.Add(clock.Elapsed.TotalSeconds);
                    cpuTimes.Add((Environment.CpuUsage.TotalTime - cpu).TotalSeconds);
                    if (reference is null) reference = output;
                    else
                    {
                        if (!output.eq(reference).all().item<bool>()) note = "tokens differ from the first cached run";
                        output.Dispose();
                    }
                }
                double seconds = TrainingBenchmark.Median(times);
                var row = new BenchmarkRow(useCache ? "kv-cache" : "recompute", o.NewTokens / seconds, seconds, note, TrainingBenchmark.Median(cpuTimes));
                log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                    $"{row.Name,-10} {row.TokensPerSecond,10:F1} tokens/s  {row.Seconds,7:F2} s (median of {o.Repeats}; {string.Join(", ", times.Select(t => t.ToString("F2", CultureInfo.InvariantCulture)))}) {row.Note}"));
                rows.Add(row);
            }
        }
        finally
        {
            reference?.Dispose();
        }
        return rows;
    }
}
