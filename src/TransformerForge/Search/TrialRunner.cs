using System.Diagnostics;
using TorchSharp;
using TransformerForge.Benchmarks;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Runtime;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Search;

/// <summary>
/// Evaluates one trial in this process: builds the model, counts its parameters and FLOPs, trains it for the trial's
/// budget (stopping at the first Primer hurdle it fails), evaluates it, and measures latency, generation speed and
/// peak memory when asked. A model that diverges, is invalid or runs out of memory gives a failed result with the
/// reason; nothing is thrown. The search runs this in a child process (<c>tforge search trial</c>) under hard bounds.
/// </summary>
public static class TrialRunner
{
    public static TrialResult Run(TrialRequest request, Action<string>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var s = request.Settings;
        var metrics = new Dictionary<string, double>();
        var intermediate = new List<IntermediateValue>();
        try
        {
            TorchRuntime.EnsureLoaded();
            var config = ModelConfig.Parse(request.Spec.ToJsonString());
            using var data = s.Data.Open();
            if (s.Threads is { } threads) torch.set_num_threads(threads);
            else if (data.Spec.Kind == TrainingDataSpec.TaskKind) torch.set_num_threads(1);
            metrics[Metrics.FlopsPerToken] = ModelCost.FlopsPerToken(request.Spec, data.InputLength);

            var budget = Budget(request);
            using var meter = s.Metrics.Contains(Metrics.PeakMemoryMiB) && PeakMemoryMeter.IsSupported ? PeakMemoryMeter.Start() : null;
            using var trainer = Trainer.Create(config, data, TrainingOptions(s, budget, request.Plan.Seed, request.Device));
            var (total, nonEmbedding) = ModelCost.CountParameters(trainer.Model);
            metrics[Metrics.Params] = total;
            metrics[Metrics.NonEmbeddingParams] = nonEmbedding;

            var state = TrialState.Complete;
            if (s.NeedsTraining)
            {
                var observer = new ProgressObserver(progress);
                var trainClock = Stopwatch.StartNew();
                foreach (var hurdle in request.Plan.Hurdles.OrderBy(h => h.At))
                {
                    TrainUntil(trainer, budget, hurdle.At, trainClock, observer);
                    var value = Primary(Evaluation(trainer), request.PrimaryMetric);
                    intermediate.Add(new IntermediateValue(hurdle.At, trainer.Step, trainClock.Elapsed.TotalSeconds, value));
                    progress?.Invoke($"hurdle at {hurdle.At:P0} of the budget (step {trainer.Step}): {request.PrimaryMetric} {value:G5}" +
                                     (hurdle.Threshold is { } t ? $" vs threshold {t:G5}" : " (no threshold yet)"));
                    if (HurdlePolicy.Fails(hurdle, value, Objective.Of(request.PrimaryMetric)))
                    {
                        state = TrialState.Pruned;
                        break;
                    }
                }
                if (state == TrialState.Complete) TrainUntil(trainer, budget, 1.0, trainClock, observer);
                var eval = Evaluation(trainer);
                metrics[Metrics.ValLoss] = eval.Loss;
                if (eval.BitsPerUnit is { } bits) metrics[eval.Unit == "char" ? Metrics.BitsPerChar : Metrics.BitsPerByte] = bits;
                if (eval.ExactMatch is { } em) metrics[Metrics.ExactMatch] = em;
                metrics["steps"] = trainer.Step;
                metrics["train_seconds"] = trainClock.Elapsed.TotalSeconds;
                if (!double.IsFinite(eval.Loss)) return Fail($"diverged: the validation loss is {eval.Loss}", clock, metrics);
            }
            if (meter is not null) metrics[Metrics.PeakMemoryMiB] = meter.PeakGrowthMiB();
            if (s.Metrics.Contains(Metrics.LatencyMs)) metrics[Metrics.LatencyMs] = LatencyMs(trainer.Model, data.VocabSize, data.InputLength, s.LatencyRepeats);
            if (s.Metrics.Contains(Metrics.GenerationTokensPerSecond))
                metrics[Metrics.GenerationTokensPerSecond] = GenerationSpeed(trainer.Model, s.GenerationTokens);
            return new TrialResult(state, metrics, intermediate, null, clock.Elapsed.TotalSeconds);
        }
        catch (NonFiniteLossException e)
        {
            return Fail($"diverged: {e.Message}", clock, metrics);
        }
        catch (ConfigException e)
        {
            return Fail($"invalid model: {e.Message}", clock, metrics);
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            return Fail($"out of memory: {FirstLine(e.Message)}", clock, metrics);
        }
    }

    /// <summary>The trial's training budget: steps, or seconds (scaled by its budget fraction).</summary>
    public static (int? Steps, double? Seconds) Budget(TrialRequest request)
    {
        var s = request.Settings;
        var f = request.Plan.BudgetFraction;
        if (s.BudgetSteps is { } steps) return (Math.Max(1, (int)Math.Round(steps * f)), null);
        if (s.BudgetSeconds is { } seconds) return (null, seconds * f);
        return (1, null);   // nothing to train: the trainer only builds the model
    }

    static TrainOptions TrainingOptions(EvaluationSettings s, (int? Steps, double? Seconds) budget, int seed, string device) => new()
    {
        Device = device,
        // With a time budget the schedule has no known end: warm up, then hold the peak rate.
        Steps = budget.Steps ?? 10_000_000,
        MinLrRatio = budget.Steps is null ? 1.0 : new TrainOptions().MinLrRatio,
        BatchSize = s.BatchSize,
        LearningRate = s.LearningRate,
        // A short trial (a low successive-halving rung) warms up over at most half its steps.
        WarmupSteps = budget.Steps is { } n ? Math.Min(s.WarmupSteps, n / 2) : s.WarmupSteps,
        WeightDecay = s.WeightDecay,
        GradClip = s.GradClip,
        EvalEvery = 0,
        EvalBatches = s.EvalBatches,
        SampleEvery = 0,
        LogEvery = 25,
        CheckpointEvery = 0,
        Seed = seed,
        OutDir = null,
    };

    static void TrainUntil(Trainer trainer, (int? Steps, double? Seconds) budget, double fraction, Stopwatch clock, ITrainingObserver observer)
    {
        if (budget.Steps is { } steps)
        {
            trainer.Run(observer, stopAfter: Math.Max(1, (int)Math.Round(steps * fraction)));
            return;
        }
        var remaining = budget.Seconds!.Value * fraction - clock.Elapsed.TotalSeconds;
        if (remaining <= 0) return;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(remaining));
        trainer.Run(observer, cancellation: stop.Token);
    }

    /// <summary>The evaluation at the trainer's current step (reusing the one the trainer made at its last step).</summary>
    static EvaluationMetrics Evaluation(Trainer trainer) =>
        trainer.LastEvaluation is { } e && e.Step == trainer.Step ? e : trainer.Evaluate();

    static double Primary(EvaluationMetrics e, string metric) => metric switch
    {
        Metrics.ValLoss => e.Loss,
        Metrics.BitsPerChar or Metrics.BitsPerByte => e.BitsPerUnit ?? double.NaN,
        Metrics.ExactMatch => e.ExactMatch ?? double.NaN,
        _ => throw new SearchException($"hurdles compare a trained metric (val_loss, bits_per_char, bits_per_byte, exact_match), not {metric}"),
    };

    /// <summary>Median wall time of a forward pass over one full-length sequence, in milliseconds.</summary>
    public static double LatencyMs(nn.Module module, int vocab, int length, int repeats)
    {
        var model = (ILanguageModel)module;
        bool training = module.training;
        module.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var device = module.parameters().First().device;
            var tokens = randint(0, vocab, new long[] { 1, length }, device: device, generator: new Generator(0));
            model.Logits(tokens).Dispose();   // warm up kernels and the allocator
            Synchronize(device);
            var times = new List<double>();
            for (int i = 0; i < repeats; i++)
            {
                var sw = Stopwatch.StartNew();
                model.Logits(tokens).Dispose();
                Synchronize(device);   // a GPU runs the kernels after the call returns: time them, not their launch
                times.Add(sw.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            return times[times.Count / 2];
        }
        finally
        {
            module.train(training);
        }
    }

    /// <summary>Greedy generation speed in tokens per second (with the model's KV cache when it has one).</summary>
    public static double GenerationSpeed(nn.Module module, int tokens)
    {
        var model = (ILanguageModel)module;
        using var scope = NewDisposeScope();
        var device = module.parameters().First().device;
        var prompt = zeros(new long[] { 1, 1 }, dtype: ScalarType.Int64, device: device);
        var options = new SamplingOptions { Greedy = true, UseCache = true };
        Autoregressive.Generate(model, prompt, Math.Min(2, tokens), options);
        Synchronize(device);
        var sw = Stopwatch.StartNew();
        Autoregressive.Generate(model, prompt, tokens, options);
        Synchronize(device);
        return tokens / sw.Elapsed.TotalSeconds;
    }

    static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize();
    }

    static TrialResult Fail(string error, Stopwatch clock, Dictionary<string, double> metrics) =>
        TrialResult.Failed(error, clock.Elapsed.TotalSeconds, metrics);

    static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException || e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("not enough memory", StringComparison.OrdinalIgnoreCase);

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    sealed class ProgressObserver(Action<string>? progress) : ITrainingObserver
    {
        public void OnStep(StepReport r)
        {
            if (r.IsLogStep) progress?.Invoke($"step {r.Step} loss {r.Loss:F4}");
        }
    }
}
