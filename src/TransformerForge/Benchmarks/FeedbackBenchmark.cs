using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Models;
using static TorchSharp.torch;

namespace TransformerForge.Benchmarks;

/// <summary>
/// Training speed, generation speed and training memory of the Feedback Transformer (original and shared key/value)
/// next to an x-transformers Decoder of the same width, heads, depth and FFN width.
/// <list type="bullet">
/// <item>Training: next-token loss, backward, AdamW step and zero_grad on a fixed random batch; warm-up steps, then
/// timed steps; tokens/s = batch · seq / median step time.</item>
/// <item>Generation: greedy and cached (the KV cache for the Decoder, the feedback memory for the Feedback
/// Transformer), batch 1; median of the timed runs.</item>
/// <item>Memory (see <see cref="PeakMemoryMeter"/>): peak RSS growth over the warm-up and timed training steps, from a
/// baseline taken after the model and its optimizer exist ("run": what training needed, first-step transients and
/// the allocator's growth included); and over one more, untimed step started from a trimmed heap ("step": what a
/// steady-state step needs).</item>
/// </list>
/// </summary>
public static class FeedbackBenchmark
{
    public static string NameOf(FeedbackBenchmarkModel model) => model switch
    {
        FeedbackBenchmarkModel.Decoder => "decoder",
        FeedbackBenchmarkModel.FeedbackOriginal => "feedback",
        FeedbackBenchmarkModel.FeedbackSharedKv => "feedback-kv",
        _ => throw new ArgumentOutOfRangeException(nameof(model)),
    };

    /// <summary>The model called <paramref name="name"/> (<see cref="NameOf"/>).</summary>
    public static FeedbackBenchmarkModel Parse(string name)
    {
        foreach (var model in Enum.GetValues<FeedbackBenchmarkModel>())
            if (NameOf(model) == name) return model;
        throw new ArgumentException($"unknown model '{name}' (decoder, feedback, feedback-kv)");
    }

    /// <summary>Benchmarks every model of <paramref name="options"/> in turn; <paramref name="log"/> gets a line per model.</summary>
    public static IReadOnlyList<FeedbackBenchmarkRow> Run(Device device, FeedbackBenchmarkOptions options, Action<string>? log = null)
    {
        options.Validate();
        WarmUpProcess(device, options);
        var rows = new List<FeedbackBenchmarkRow>();
        foreach (var kind in options.Models)
        {
            var row = RunModel(device, kind, options);
            log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"{row.Name,-12} {row.Depth} layers: train {row.TrainTokensPerSecond,9:F0} tok/s, generate {row.GenerateTokensPerSecond,7:F1} tok/s, peak +{row.RunPeakMemoryMiB:F0} / +{row.StepPeakMemoryMiB:F0} MiB"));
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>Builds one model, trains it for the warm-up and timed steps, then times its generation.</summary>
    public static FeedbackBenchmarkRow RunModel(Device device, FeedbackBenchmarkModel kind, FeedbackBenchmarkOptions options)
    {
        options.Validate();
        manual_seed(options.Seed);
        using var model = Build(kind, options);
        model.to(device);
        var parameters = model.parameters().Sum(p => p.numel());
        using var optimizer = optim.AdamW(model.parameters(), lr: 1e-3);

        manual_seed(options.Seed + 1);
        // SeqLen + 1 tokens: SeqLen inputs, each predicting the next.
        using var batch = randint(0, options.Vocabulary, [options.Batch, options.SeqLen + 1], device: device);
        using var prompt = randint(0, options.Vocabulary, [1, options.PromptLength], device: device);

        var train = Train(model, optimizer, batch, device, options);
        var generate = Generate(model, prompt, device, options);

        return new FeedbackBenchmarkRow(kind, options.Depth, parameters,
            options.Batch * (double)options.SeqLen / train.Step, train.Step, train.Forward, train.Backward, train.Optimizer,
            options.NewTokens / generate, train.RunPeakMiB, train.StepPeakMiB, train.Method);
    }

    /// <summary>Figures, then ratios: shared-KV over original, and each Feedback Transformer over the Decoder, per depth.</summary>
    public static IEnumerable<string> Table(IReadOnlyList<FeedbackBenchmarkRow> rows)
    {
        var c = CultureInfo.InvariantCulture;
        yield return "model        layers  params  train tok/s  step ms (fwd / bwd / adamw)  gen tok/s  peak RSS run / step";
        foreach (var r in rows)
            yield return string.Format(c, "{0,-12} {1,6} {2,7:F2}M {3,12:F0} {4,8:F1} ({5,6:F1} / {6,6:F1} / {7,5:F1}) {8,10:F1} {9,8:F0} / {10,4:F0} MiB",
                r.Name, r.Depth, r.Parameters / 1e6, r.TrainTokensPerSecond, r.StepSeconds * 1e3, r.ForwardSeconds * 1e3,
                r.BackwardSeconds * 1e3, r.OptimizerSeconds * 1e3, r.GenerateTokensPerSecond, r.RunPeakMemoryMiB, r.StepPeakMemoryMiB);

        foreach (var depth in rows.GroupBy(r => r.Depth))
        {
            var byModel = depth.GroupBy(r => r.Model).ToDictionary(g => g.Key, g => g.First());
            byModel.TryGetValue(FeedbackBenchmarkModel.Decoder, out var decoder);
            byModel.TryGetValue(FeedbackBenchmarkModel.FeedbackOriginal, out var original);
            byModel.TryGetValue(FeedbackBenchmarkModel.FeedbackSharedKv, out var shared);
            yield return "";
            yield return $"{depth.Key} layers:";
            if (original is not null && shared is not null)
                yield return string.Format(c, "  feedback-kv / feedback: training {0:F2}x, generation {1:F2}x, memory {2:F2}x run, {3:F2}x step",
                    shared.TrainTokensPerSecond / original.TrainTokensPerSecond,
                    shared.GenerateTokensPerSecond / original.GenerateTokensPerSecond,
                    Ratio(shared.RunPeakMemoryMiB, original.RunPeakMemoryMiB), Ratio(shared.StepPeakMemoryMiB, original.StepPeakMemoryMiB));
            if (decoder is null) continue;
            foreach (var feedback in new[] { original, shared }.OfType<FeedbackBenchmarkRow>())
                yield return string.Format(c, "  {0} / decoder: training {1:F3}x, generation {2:F2}x, memory {3:F2}x run, {4:F2}x step",
                    feedback.Name, feedback.TrainTokensPerSecond / decoder.TrainTokensPerSecond,
                    feedback.GenerateTokensPerSecond / decoder.GenerateTokensPerSecond,
                    Ratio(feedback.RunPeakMemoryMiB, decoder.RunPeakMemoryMiB), Ratio(feedback.StepPeakMemoryMiB, decoder.StepPeakMemoryMiB));
        }
        yield return "";
        yield return "peak RSS, growth over resident memory (" + (rows.FirstOrDefault()?.MemoryMethod ?? "-") + "): run = over the " +
                     "warm-up and timed steps, from just before the first (model and optimizer built, freed heap returned " +
                     "with malloc_trim), so first-step transients and what the allocator keeps count; step = over one more " +
                     "untimed step started from a trimmed heap, what a steady-state step needs.";
    }

    /// <summary>
    /// Runs every model at a tiny size first, so that one-off costs (JIT compilation and .NET's tiered re-compilation
    /// of hot methods, which takes some 30 calls each; type loading; libtorch's thread pool) land on no model's
    /// figures: otherwise whichever model runs first pays them in time and in memory.
    /// </summary>
    private static void WarmUpProcess(Device device, FeedbackBenchmarkOptions options)
    {
        var tiny = options with
        {
            SeqLen = 8, Batch = 2, WarmupSteps = 0, Steps = 20, PromptLength = 2, NewTokens = 16, GenerationRepeats = 2, MaxMemory = null,
        };
        foreach (var kind in options.Models) RunModel(device, kind, tiny);
    }

    private static LanguageModel Build(FeedbackBenchmarkModel kind, FeedbackBenchmarkOptions o) => kind switch
    {
        FeedbackBenchmarkModel.Decoder => new TransformerWrapper(new TransformerWrapperConfig
        {
            NumTokens = o.Vocabulary,
            MaxSeqLen = o.NeededMemory,
            AttnLayers = new AttentionLayersConfig
            {
                Type = LayerStackType.Decoder, Dim = o.Dim, Depth = o.Depth, Heads = o.Heads, RotaryPosEmb = o.Positions == "rotary",
                Attn = new AttentionOptions { DimHead = o.Dim / o.Heads }, Ff = new FeedForwardOptions { Mult = (double)o.FfInnerDim / o.Dim },
            },
        }),
        _ => new FeedbackLanguageModel(o.Vocabulary, o.Dim, o.Heads, o.FfInnerDim, o.Depth,
            sharedKv: kind == FeedbackBenchmarkModel.FeedbackSharedKv, maxMemory: o.MaxMemory ?? o.NeededMemory),
    };

    private static (double Step, double Forward, double Backward, double Optimizer, double RunPeakMiB, double StepPeakMiB, string Method) Train(
        LanguageModel model, optim.Optimizer optimizer, Tensor batch, Device device, FeedbackBenchmarkOptions o)
    {
        model.train();
        var steps = new List<double>();
        var forwards = new List<double>();
        var backwards = new List<double>();
        var optimizerSteps = new List<double>();
        double runPeak, stepPeak;
        string method;
        using (var meter = PeakMemoryMeter.IsSupported ? PeakMemoryMeter.Start() : null)
        {
            for (var i = 0; i < o.WarmupSteps + o.Steps; i++)
            {
                var (forward, backward, optimizerStep) = TrainStep(model, optimizer, batch, device);
                if (i < o.WarmupSteps) continue;
                forwards.Add(forward);
                backwards.Add(backward);
                optimizerSteps.Add(optimizerStep);
                steps.Add(forward + backward + optimizerStep);
            }
            runPeak = meter?.PeakGrowthMiB() ?? double.NaN;
            method = meter?.Method ?? "not measured: no /proc/self/status here";
        }
        // Measured apart, after the timed steps: trimming the heap before each of them would slow them down.
        using (var meter = PeakMemoryMeter.IsSupported ? PeakMemoryMeter.Start() : null)
        {
            TrainStep(model, optimizer, batch, device);
            stepPeak = meter?.PeakGrowthMiB() ?? double.NaN;
        }
        return (Median(steps), Median(forwards), Median(backwards), Median(optimizerSteps), runPeak, stepPeak, method);
    }

    /// <summary>One training step; seconds of its forward, backward and optimizer phases.</summary>
    private static (double Forward, double Backward, double Optimizer) TrainStep(ILanguageModel model, optim.Optimizer optimizer,
        Tensor batch, Device device)
    {
        // Every step's tensors are freed at its end, as a training loop should; otherwise memory waits for the GC.
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        var loss = Autoregressive.NextTokenLoss(model, batch);
        var forward = Lap(clock, device);
        loss.backward();
        var backward = Lap(clock, device);
        optimizer.step();
        optimizer.zero_grad();
        var optimizerStep = Lap(clock, device);
        if (!double.IsFinite(loss.item<float>())) throw new InvalidOperationException("the training loss is not finite");
        return (forward, backward, optimizerStep);
    }

    /// <summary>Median seconds for <see cref="FeedbackBenchmarkOptions.NewTokens"/> greedy cached tokens.</summary>
    private static double Generate(ILanguageModel model, Tensor prompt, Device device, FeedbackBenchmarkOptions o)
    {
        var cached = new SamplingOptions { Greedy = true, UseCache = true };
        Autoregressive.Generate(model, prompt, Math.Min(8, o.NewTokens), cached).Dispose();
        var times = new List<double>();
        for (var i = 0; i < o.GenerationRepeats; i++)
        {
            var clock = Stopwatch.StartNew();
            Autoregressive.Generate(model, prompt, o.NewTokens, cached).Dispose();
            times.Add(Lap(clock, device));
        }
        return Median(times);
    }

    /// <summary>Seconds since the last lap (after the device has finished), restarting the clock.</summary>
    private static double Lap(Stopwatch clock, Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        var seconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        return seconds;
    }

    private static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static double Ratio(double numerator, double denominator) => denominator > 0 ? numerator / denominator : double.NaN;
}
