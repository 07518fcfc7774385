using System.Diagnostics;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// Trains a language model with next-token cross-entropy: AdamW (weight decay on matrices only), linear warmup then
/// cosine decay, gradient clipping and accumulation, periodic evaluation, samples and checkpoints. Batches come from
/// a <see cref="Random"/> derived from (seed, step) and dropout from the torch RNG, which checkpoints save, so a run
/// stopped and resumed takes exactly the steps an uninterrupted one would.
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly LanguageModel _model;
    readonly ITrainingData _data;
    readonly AdamW _optimizer;
    readonly SamplingOptions _sampling;
    readonly bool _ownsModel;
    double _elapsedBefore;
    long _tokensSeen;

    /// <param name="model">The language model, already on the options' device.</param>
    /// <param name="config">Its configuration, written into checkpoints.</param>
    public Trainer(LanguageModel model, ModelConfig config, ITrainingData data, TrainOptions options, SamplingOptions? sampling = null)
        : this(model, config, data, options, sampling, ownsModel: false) { }

    Trainer(LanguageModel model, ModelConfig config, ITrainingData data, TrainOptions options, SamplingOptions? sampling, bool ownsModel)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _model = model;
        Evaluator.CheckFits(model, data);
        Config = config;
        _data = data;
        Options = options;
        Device = TorchRuntime.SelectDevice(options.Device);
        Schedule = LearningRateSchedule.From(options);
        _optimizer = new AdamW(ParameterGroups.Split(model, options.WeightDecay), options.Beta1, options.Beta2, options.Epsilon);
        _sampling = sampling ?? data.DefaultSampling(options.Seed);
        if (_sampling.Seed is null && !_sampling.Greedy)
            throw new ArgumentException("sampling options for a run's samples need a Seed: unseeded sampling advances the global torch RNG, and a resumed run would diverge");
        _ownsModel = ownsModel;
        ParameterCount = ParameterGroups.Unique(model).Sum(p => p.Parameter.NumberOfElements);
    }

    /// <summary>Seeds torch with <see cref="TrainOptions.Seed"/>, builds the model of <paramref name="config"/> on the options' device and a trainer for it.</summary>
    public static Trainer Create(ModelConfig config, ITrainingData data, TrainOptions options, SamplingOptions? sampling = null)
    {
        options.Validate();
        CheckCausal(config);
        var device = TorchRuntime.SelectDevice(options.Device);
        torch.random.manual_seed(options.Seed);
        var model = ModelFactory.CreateLanguageModel(config);
        try
        {
            model.to(device);
            return new Trainer(model, config, data, options, sampling, ownsModel: true);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Continues the run saved at <paramref name="checkpoint"/> (a checkpoint or run directory): weights, optimizer
    /// state, step and torch RNG. With the checkpoint's own options (see <see cref="TrainerState.Options"/>) the
    /// remaining steps are those an uninterrupted run takes; <see cref="TrainOptions.Steps"/> may be raised to train longer.
    /// </summary>
    public static Trainer Resume(string checkpoint, ITrainingData data, TrainOptions options, SamplingOptions? sampling = null)
    {
        options.Validate();
        var dir = Checkpoint.Resolve(checkpoint);
        var state = TrainerState.Load(dir);
        if (state.Step > options.Steps)
            throw new ArgumentException($"the checkpoint in '{dir}' is at step {state.Step}, past the {options.Steps} steps asked for; ask for more steps");
        var (config, model) = ModelDirectory.LoadLanguageModel(dir);
        try
        {
            CheckCausal(config);
            model.to(TorchRuntime.SelectDevice(options.Device));
            var trainer = new Trainer(model, config, data, options, sampling, ownsModel: true);
            Checkpoint.LoadOptimizer(dir, trainer._optimizer);
            Checkpoint.RestoreRng(dir);
            trainer.Step = state.Step;
            trainer._elapsedBefore = state.ElapsedSeconds;
            trainer._tokensSeen = state.TokensSeen;
            trainer.LastEvaluation = state.LastEvaluation;
            return trainer;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    static void CheckCausal(ModelConfig config)
    {
        if (config is TransformerWrapperConfig { AttnLayers.IsCausal: false } c)
            throw new ConfigException("attn_layers.type", $"next-token training needs causal layers (Decoder), got {c.AttnLayers.Type.JsonName()}");
    }

    public LanguageModel Model => _model;
    public ModelConfig Config { get; }
    public TrainOptions Options { get; }
    public Device Device { get; }
    public LearningRateSchedule Schedule { get; }
    public AdamW Optimizer => _optimizer;
    public long ParameterCount { get; }
    /// <summary>Completed optimizer steps.</summary>
    public int Step { get; private set; }
    public EvaluationMetrics? LastEvaluation { get; private set; }

    /// <summary>Input tokens one optimizer step consumes.</summary>
    public long TokensPerStep => (long)Options.EffectiveBatchSize * _data.InputLength;

    /// <summary>
    /// Trains until <see cref="TrainOptions.Steps"/>, the exact-match target, step <paramref name="stopAfter"/>, or
    /// cancellation (checked between steps). With an <see cref="TrainOptions.OutDir"/>, metrics go to
    /// <c>metrics.jsonl</c> and a checkpoint is written every <see cref="TrainOptions.CheckpointEvery"/> steps and when it returns.
    /// </summary>
    public TrainingResult Run(ITrainingObserver? observer = null, int? stopAfter = null, CancellationToken cancellation = default)
    {
        observer ??= new NullObserver();
        var o = Options;
        using var metrics = o.OutDir is null ? null : MetricsLog.Open(o.OutDir, Step > 0 ? Step : null);
        observer.OnStart(new TrainingStart(Step, o.Steps, ParameterCount, _data.Description, Device.ToString(), o.OutDir));

        int until = Math.Min(stopAfter ?? o.Steps, o.Steps);
        int sessionStart = Step;
        var session = Stopwatch.StartNew();
        double computeSeconds = 0, logSeconds = 0;
        long logTokens = 0;
        var reason = StopReason.Completed;
        _model.train();

        while (Step < until)
        {
            if (cancellation.IsCancellationRequested)
            {
                reason = StopReason.StopRequested;
                break;
            }
            var started = Stopwatch.GetTimestamp();
            var (loss, lr, gradNorm) = TrainStep();
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            computeSeconds += seconds;
            logSeconds += seconds;
            logTokens += TokensPerStep;
            _tokensSeen += TokensPerStep;

            bool last = Step == o.Steps;
            bool isLog = Step % o.LogEvery == 0 || last || Step == until;
            var eta = TimeSpan.FromSeconds(session.Elapsed.TotalSeconds / (Step - sessionStart) * (until - Step));
            var report = new StepReport(Step, o.Steps, loss, lr, gradNorm, logTokens / Math.Max(logSeconds, 1e-9),
                TimeSpan.FromSeconds(_elapsedBefore) + session.Elapsed, eta, isLog);
            observer.OnStep(report);
            if (isLog)
            {
                metrics?.Write(report);
                logTokens = 0;
                logSeconds = 0;
            }

            if ((o.EvalEvery > 0 && Step % o.EvalEvery == 0) || last)
            {
                var eval = Evaluate();
                metrics?.Write(eval);
                observer.OnEvaluation(eval);
                if (eval.ExactMatch >= o.TargetExactMatch) reason = StopReason.TargetReached;
            }
            if (o.SampleEvery > 0 && o.SampleCount > 0 && (Step % o.SampleEvery == 0 || last || reason == StopReason.TargetReached))
                observer.OnSamples(Step, Samples(o.SampleCount));
            if (reason == StopReason.TargetReached) break;
            if (o.OutDir is not null && o.CheckpointEvery > 0 && Step % o.CheckpointEvery == 0 && Step < until)
                observer.OnCheckpoint(Step, SaveCheckpoint(session.Elapsed));
        }
        if (reason == StopReason.Completed && Step < o.Steps) reason = StopReason.StopRequested;

        string? path = null;
        if (o.OutDir is not null)
        {
            path = SaveCheckpoint(session.Elapsed);
            observer.OnCheckpoint(Step, path);
        }
        _elapsedBefore += session.Elapsed.TotalSeconds;
        var tokensPerSecond = computeSeconds > 0 ? (Step - sessionStart) * (double)TokensPerStep / computeSeconds : 0;
        return new TrainingResult(Step, reason, LastEvaluation, TimeSpan.FromSeconds(_elapsedBefore), tokensPerSecond, path);
    }

    (double Loss, double Lr, double GradNorm) TrainStep()
    {
        using var scope = NewDisposeScope();
        var o = Options;
        double lr = Schedule.At(Step);
        var random = BatchRandom(o.Seed, Step);
        _optimizer.ZeroGrad();
        Tensor? total = null;
        for (int micro = 0; micro < o.GradAccumulation; micro++)
        {
            var batch = _data.TrainBatch(o.BatchSize, random).To(Device);
            var loss = Loss(_model.Logits(batch.Input), batch.Target, batch.LossMask);
            (o.GradAccumulation > 1 ? loss / o.GradAccumulation : loss).backward();
            total = total is null ? loss.detach() : total + loss.detach();
        }
        double lossValue = total!.item<float>() / o.GradAccumulation;
        if (!double.IsFinite(lossValue)) throw new NonFiniteLossException(Step + 1, "loss", lossValue);
        // With clipping off, an infinite bound still returns the norm (for the logs) and leaves the gradients alone.
        double gradNorm = nn.utils.clip_grad_norm_(_optimizer.Parameters, o.GradClip > 0 ? o.GradClip : double.PositiveInfinity);
        if (!double.IsFinite(gradNorm)) throw new NonFiniteLossException(Step + 1, "gradient norm", gradNorm);
        _optimizer.Step(lr);
        Step++;
        return (lossValue, lr, gradNorm);
    }

    /// <summary>Mean cross-entropy of <paramref name="logits"/> [b, n, V] against <paramref name="target"/> [b, n] over the masked-in positions.</summary>
    public static Tensor Loss(Tensor logits, Tensor target, Tensor? mask, nn.Reduction reduction = nn.Reduction.Mean)
    {
        var flat = logits.reshape(-1, logits.shape[^1]);
        var t = mask is null ? target : target.masked_fill(mask.logical_not(), IgnoreIndex);
        return nn.functional.cross_entropy(flat, t.reshape(-1), ignore_index: IgnoreIndex, reduction: reduction);
    }

    const long IgnoreIndex = -100;

    /// <summary>Loss, perplexity, bits per byte/char and (tasks) exact match over the fixed validation batches.</summary>
    public EvaluationMetrics Evaluate() =>
        LastEvaluation = Evaluator.Evaluate(_model, _data, Options.EvalBatches, Options.BatchSize, Device, Step);

    /// <summary>Sample lines from held-out prompts (greedy for tasks, temperature sampling for text).</summary>
    public IReadOnlyList<string> Samples(int count)
    {
        _model.eval();
        try { return _data.Samples(_model, _sampling, count, Options.SampleLength, Device); }
        finally { _model.train(); }
    }

    /// <summary>Writes the checkpoint into <c>OutDir/checkpoint</c> (or <paramref name="directory"/>) and returns its path.</summary>
    public string SaveCheckpoint(string? directory = null) => SaveCheckpoint(TimeSpan.Zero, directory);

    string SaveCheckpoint(TimeSpan sessionElapsed, string? directory = null)
    {
        var dir = directory ?? (Options.OutDir is { } o ? Checkpoint.InRun(o)
            : throw new InvalidOperationException("no checkpoint directory: set TrainOptions.OutDir or pass one"));
        var state = new TrainerState
        {
            Step = Step,
            Options = Options,
            Schedule = Schedule,
            NextLearningRate = Schedule.At(Step),
            ElapsedSeconds = _elapsedBefore + sessionElapsed.TotalSeconds,
            TokensSeen = _tokensSeen,
            LastEvaluation = LastEvaluation,
        };
        Checkpoint.Save(dir, Config, _model, _optimizer, state, _data);
        return Path.GetFullPath(dir);
    }

    /// <summary>The batch RNG of a step: a SplitMix64 hash of (seed, step), so it needs no saved state.</summary>
    public static Random BatchRandom(int seed, int step)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)step) + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return new Random((int)(z & 0x7FFFFFFF));
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        if (_ownsModel) _model.Dispose();
    }

    sealed class NullObserver : ITrainingObserver { }
}
