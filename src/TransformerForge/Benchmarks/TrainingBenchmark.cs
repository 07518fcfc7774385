using System.Globalization;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Runtime;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Benchmarks;

/// <summary>What <see cref="TrainingBenchmark"/> measures: a model, a batch shape and how the step is taken.</summary>
public sealed record TrainingBenchmarkOptions
{
    /// <summary>Any decoder model (a TransformerWrapper with causal layers, or a FeedbackTransformer).</summary>
    public required ModelConfig Model { get; init; }
    public int Batch { get; init; } = 8;
    /// <summary>Input tokens per sequence; at most the model's max_seq_len.</summary>
    public int SeqLen { get; init; } = 256;
    public int WarmupSteps { get; init; } = 3;
    /// <summary>Timed steps; the median is reported.</summary>
    public int Steps { get; init; } = 10;
    public string Device { get; init; } = "cpu";
    /// <summary>fp32, bf16 or fp16 (see <see cref="TrainOptions.Precision"/>).</summary>
    public string Precision { get; init; } = Training.Precision.Fp32;
    /// <summary>The flat AdamW (on) or one set of operations per parameter tensor (off), to measure the lever.</summary>
    public bool FlatOptimizer { get; init; } = true;
    public int Seed { get; init; } = 0;
    /// <summary>Log resident memory every this many steps (0: never), to watch it over a long run.</summary>
    public int RssEvery { get; init; }

    public void Validate()
    {
        if (Batch < 1) throw new ArgumentException($"batch must be positive, got {Batch}");
        if (SeqLen < 1) throw new ArgumentException($"sequence length must be positive, got {SeqLen}");
        if (WarmupSteps < 0) throw new ArgumentException($"warm-up steps must not be negative, got {WarmupSteps}");
        if (Steps < 1) throw new ArgumentException($"timed steps must be positive, got {Steps}");
        Training.Precision.DType(Precision);
    }
}

/// <summary>Medians of the timed steps (seconds), throughput and memory.</summary>
public sealed record TrainingBenchmarkResult(
    string Model, long Parameters, int Batch, int SeqLen, string Device, string Precision, bool FlatOptimizer, int Threads,
    double StepSeconds, double ForwardSeconds, double BackwardSeconds, double OptimizerSeconds, double TokensPerSecond,
    double PeakRssMiB, double? PeakDeviceMiB, double FinalLoss, double RssAfterWarmupMiB = double.NaN, double RssAtEndMiB = double.NaN, int Trims = 0,
    PhaseCpu? Cpu = null)
{
    /// <summary>The line every stack of the side-by-side harness prints (benchmarks/pytorch/ prints the same keys).</summary>
    public string ResultLine(string stack = "tforge") =>
        I($"RESULT stack={stack} workload=train model={Model} device={Device} precision={Precision} batch={Batch} seq={SeqLen} ") +
        I($"threads={Threads} step_ms={StepSeconds * 1e3:F2} fwd_ms={ForwardSeconds * 1e3:F2} bwd_ms={BackwardSeconds * 1e3:F2} ") +
        I($"opt_ms={OptimizerSeconds * 1e3:F2} tokens_per_s={TokensPerSecond:F1} peak_rss_mib={PeakRssMiB:F1} ") +
        I($"rss_after_warmup_mib={RssAfterWarmupMiB:F1} rss_end_mib={RssAtEndMiB:F1} trims={Trims}") +
        (Cpu is { } c ? I($" step_cpu_ms={c.Step * 1e3:F2} fwd_cpu_ms={c.Forward * 1e3:F2} bwd_cpu_ms={c.Backward * 1e3:F2} opt_cpu_ms={c.Optimizer * 1e3:F2}") : "") +
        (PeakDeviceMiB is { } d ? I($" peak_device_mib={d:F1}") : "");

    public string Describe() =>
        I($"{Model}: {Parameters / 1e6:F2}M parameters, batch {Batch} x {SeqLen}, {Device}, {Precision}, {(FlatOptimizer ? "flat" : "per-tensor")} AdamW, {Threads} threads\n") +
        I($"step {StepSeconds * 1e3:F1} ms (forward {ForwardSeconds * 1e3:F1} / backward {BackwardSeconds * 1e3:F1} / optimizer {OptimizerSeconds * 1e3:F1}), ") +
        I($"{TokensPerSecond:F0} tokens/s, peak RSS {PeakRssMiB:F0} MiB (after warm-up {RssAfterWarmupMiB:F0}, at the end {RssAtEndMiB:F0}, {Trims} heap trims)") +
        (PeakDeviceMiB is { } d ? I($", peak device memory {d:F0} MiB") : "") +
        I($", loss {FinalLoss:F4}") +
        (Cpu is { } c ? I($"\nCPU time per step {c.Step * 1e3:F1} ms (forward {c.Forward * 1e3:F1} / backward {c.Backward * 1e3:F1} / optimizer {c.Optimizer * 1e3:F1})") : "");

    static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Medians of the CPU seconds the process spent per timed step and per phase (all threads, user and system): what a
/// step costs in work, which a busy machine's scheduler does not distort the way it distorts wall-clock times.
/// </summary>
public sealed record PhaseCpu(double Step, double Forward, double Backward, double Optimizer);

/// <summary>
/// Training speed of any model: the steps <see cref="Trainer"/> takes (next-token loss, backward, gradient clipping,
/// AdamW, mixed precision if asked), on random tokens, timed phase by phase with the device synchronised between
/// phases. Warm-up steps first (allocator, thread pool, .NET's tiered JIT), then the median of the timed steps.
/// </summary>
public static class TrainingBenchmark
{
    public static TrainingBenchmarkResult Run(TrainingBenchmarkOptions o, string modelName, Action<string>? log = null)
    {
        o.Validate();
        var device = TorchRuntime.SelectDevice(o.Device);
        int inputLength = o.SeqLen;
        using var data = new RandomTokenData(VocabularyOf(o.Model), inputLength);
        var options = new TrainOptions
        {
            Steps = int.MaxValue, BatchSize = o.Batch, LearningRate = 1e-4, WarmupSteps = 0, EvalEvery = 0, SampleEvery = 0,
            LogEvery = 1, CheckpointEvery = 0, Seed = o.Seed, Device = o.Device, Precision = o.Precision, FlatOptimizer = o.FlatOptimizer,
        };
        using var trainer = Trainer.Create(o.Model, data, options);
        var timings = new List<Trainer.StepTiming>();
        double rssAfterWarmup = PeakMemoryMeter.ProcessResidentMiB();
        int trimsBefore = NativeMemory.Trims;
        for (int i = 0; i < o.WarmupSteps + o.Steps; i++)
        {
            var t = trainer.TimedStep();
            if (i >= o.WarmupSteps) timings.Add(t);
            if (i + 1 == o.WarmupSteps) rssAfterWarmup = PeakMemoryMeter.ProcessResidentMiB();
            bool rss = o.RssEvery > 0 && (i + 1) % o.RssEvery == 0;
            if (log is null || (!rss && o.RssEvery > 0)) continue;
            log(string.Create(CultureInfo.InvariantCulture,
                $"{(i < o.WarmupSteps ? "warm-up" : "step")} {i + 1}: {t.Total * 1e3:F1} ms ({t.Forward * 1e3:F1} / {t.Backward * 1e3:F1} / {t.Optimizer * 1e3:F1}), loss {t.Loss:F4}, {get_num_threads()} threads") +
                (rss ? string.Create(CultureInfo.InvariantCulture, $", RSS {PeakMemoryMeter.ProcessResidentMiB():F0} MiB, {NativeMemory.Trims - trimsBefore} trims") : ""));
        }
        double step = Median(timings.Select(t => t.Total));
        return new TrainingBenchmarkResult(modelName, trainer.ParameterCount, o.Batch, o.SeqLen, device.ToString(), o.Precision,
            o.FlatOptimizer, get_num_threads(), step, Median(timings.Select(t => t.Forward)), Median(timings.Select(t => t.Backward)),
            Median(timings.Select(t => t.Optimizer)), o.Batch * (double)o.SeqLen / step, PeakMemoryMeter.ProcessPeakMiB(),
            null, timings[^1].Loss, rssAfterWarmup, PeakMemoryMeter.ProcessResidentMiB(), NativeMemory.Trims - trimsBefore,
            new PhaseCpu(Median(timings.Select(t => t.TotalCpu)), Median(timings.Select(t => t.ForwardCpu)),
                Median(timings.Select(t => t.BackwardCpu)), Median(timings.Select(t => t.OptimizerCpu))));
    }

    static int VocabularyOf(ModelConfig config) => ModelFactory.Vocabulary(config)
        ?? throw new ConfigException("type", $"bench train needs a language model (TransformerWrapper, FeedbackTransformer or TransformerPlusPlus), got {config.Type}");

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
