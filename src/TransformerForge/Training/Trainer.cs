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
    readonly MixedPrecision? _mixed;
    LossScaler? _scaler;
    readonly List<(StepReport Report, Tensor Values)> _pending = new();
    double _elapsedBefore;
    long _tokensSeen;

    /// <param name="model">The language model, already on the options' device.</param>
    /// <param name="config">Its configuration, written into checkpoints.</param>
    public Trainer(LanguageModel model, ModelConfig config, ITrainingData data, TrainOptions options, SamplingOptions? sampling = null)
        : this(model, config, data, options, sampling, ownsModel: false) { }

    Trainer(LanguageModel model, ModelConfig config, ITrainingData data, TrainOptions options, SamplingOptions? sampling, bool ownsModel,
        LearningRateSchedule? schedule = null, int? savedThreads = null)
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
        SavedThreads = savedThreads;
        Threads = ThreadPolicy.ForRun(savedThreads);
        Schedule = schedule ?? LearningRateSchedule.From(options);
        _optimizer = new AdamW(ParameterGroups.Split(model, options.WeightDecay), options.Beta1, options.Beta2, options.Epsilon,
            flat: options.FlatOptimizer);
        var dtype = Training.Precision.DType(options.Precision);
        if (dtype != ScalarType.Float32)
        {
            try { _mixed = new MixedPrecision(config, _optimizer, dtype, Device); }
            catch { _optimizer.Dispose(); throw; }
        }
        if (dtype == ScalarType.Float16) _scaler = new LossScaler(options.InitialLossScale);
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
        CheckMemory(config, data, options, device);
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
    /// state, step, learning-rate schedule and torch RNG. The checkpoint's parts are checked against each other, and
    /// <paramref name="options"/> and <paramref name="data"/> against the checkpoint (see <see cref="ResumeRules"/>:
    /// a change of seed, batch, optimizer, schedule or data is refused), before anything is restored; the remaining
    /// steps are then exactly those an uninterrupted run takes. <see cref="TrainOptions.Steps"/> may change.
    /// </summary>
    public static Trainer Resume(string checkpoint, ITrainingData data, TrainOptions options, SamplingOptions? sampling = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        options.Validate();
        var dir = Checkpoint.Resolve(checkpoint);
        using var saved = Checkpoint.Read(dir);
        ResumeRules.Check(dir, saved.State, saved.Data, options, data.Spec);
        var device = TorchRuntime.SelectDevice(options.Device);
        var config = ModelConfig.Load(Path.Combine(dir, ModelDirectory.ConfigFile));
        CheckCausal(config);
        CheckMemory(config, data, options, device);

        var (_, model) = ModelDirectory.LoadLanguageModel(dir);
        try
        {
            model.to(device);
            var trainer = new Trainer(model, config, data, options, sampling, ownsModel: true, saved.State.EffectiveSchedule,
                saved.State.Threads);
            trainer._optimizer.LoadState(saved.Optimizer, Path.Combine(dir, Checkpoint.OptimizerFile));
            trainer._mixed?.RefreshWeights();
            if (trainer._scaler is not null && saved.State.LossScale is { } scale)
                trainer._scaler = new LossScaler(scale, saved.State.LossScaleGoodSteps);
            TrainingRng.Restore(saved.Rng, device);
            trainer.Step = saved.State.Step;
            trainer._elapsedBefore = saved.State.ElapsedSeconds;
            trainer._tokensSeen = saved.State.TokensSeen;
            trainer.LastEvaluation = saved.State.LastEvaluation;
            return trainer;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Refuses a run whose estimated memory (parameters, gradients, AdamW state, one micro-batch's activations) exceeds the device's.</summary>
    static void CheckMemory(ModelConfig config, ITrainingData data, TrainOptions options, Device device) =>
        MemoryGuard.EnsureFits(ModelSize.ForTraining(config, options.BatchSize, data.InputLength), device,
            $"training with batch {options.BatchSize} × {data.InputLength} tokens");

    static void CheckCausal(ModelConfig config)
    {
        if (config is TransformerWrapperConfig { AttnLayers.IsCausal: false } c)
            throw new ConfigException("attn_layers.type", $"next-token training needs causal layers (Decoder), got {c.AttnLayers.Type.JsonName()}");
    }

    public LanguageModel Model => _model;
    public ModelConfig Config { get; }
    public TrainOptions Options { get; }
    public Device Device { get; }
    /// <summary>The CPU thread count this run computes with, fixed for the whole run (see <see cref="ThreadPolicy.ForRun"/>).</summary>
    public int Threads { get; }
    /// <summary>A resumed run: the thread count its checkpoint was saved with (null for a new run or an older checkpoint).</summary>
    public int? SavedThreads { get; }
    public LearningRateSchedule Schedule { get; }
    public AdamW Optimizer => _optimizer;
    /// <summary>Mixed precision: the low-precision working copy that runs forward and backward (null in fp32).</summary>
    public MixedPrecision? MixedPrecision => _mixed;
    /// <summary>fp16: the dynamic loss scaler (null otherwise).</summary>
    public LossScaler? LossScaler => _scaler;
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
        // One process per run directory: a second run there would interleave checkpoints and metrics.
        using var runLock = o.OutDir is null ? null : RunLock.Acquire(o.OutDir);
        using var metrics = o.OutDir is null ? null : MetricsLog.Open(o.OutDir, Step > 0 ? Step : null);
        observer.OnStart(new TrainingStart(Step, o.Steps, ParameterCount, _data.Description, Device.ToString(), o.OutDir));

        int until = Math.Min(stopAfter ?? o.Steps, o.Steps);
        int sessionStart = Step;
        var session = Stopwatch.StartNew();
        var sinceCheckpoint = Stopwatch.StartNew();
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
            var (values, lr) = TrainStep(null);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            computeSeconds += seconds;
            logSeconds += seconds;
            logTokens += TokensPerStep;
            _tokensSeen += TokensPerStep;

            bool last = Step == o.Steps;
            bool isLog = Step % o.LogEvery == 0 || last || Step == until;
            var eta = TimeSpan.FromSeconds(session.Elapsed.TotalSeconds / (Step - sessionStart) * (until - Step));
            // Loss and gradient norm are read from the device only when reports are delivered (see StepReport).
            var report = new StepReport(Step, o.Steps, double.NaN, lr, double.NaN, logTokens / Math.Max(logSeconds, 1e-9),
                TimeSpan.FromSeconds(_elapsedBefore) + session.Elapsed, eta, isLog, _scaler?.Scale);
            _pending.Add((report, values));
            if (isLog)
            {
                logTokens = 0;
                logSeconds = 0;
            }
            bool evaluate = (o.EvalEvery > 0 && Step % o.EvalEvery == 0) || last;
            bool sample = o.SampleEvery > 0 && o.SampleCount > 0 && (Step % o.SampleEvery == 0 || last);
            bool checkpoint = o.OutDir is not null && o.CheckpointEvery > 0 && Step % o.CheckpointEvery == 0;
            if (isLog || evaluate || sample || checkpoint) Deliver(observer, metrics);

            if (evaluate)
            {
                var eval = Evaluate();
                metrics?.Write(eval);
                observer.OnEvaluation(eval);
                if (eval.ExactMatch >= o.TargetExactMatch) reason = StopReason.TargetReached;
            }
            if (o.SampleEvery > 0 && o.SampleCount > 0 && (Step % o.SampleEvery == 0 || last || reason == StopReason.TargetReached))
                observer.OnSamples(Step, Samples(o.SampleCount));
            if (reason == StopReason.TargetReached) break;
            bool stepDue = o.CheckpointEvery > 0 && Step % o.CheckpointEvery == 0;
            bool timeDue = o.CheckpointEverySeconds > 0 && sinceCheckpoint.Elapsed.TotalSeconds >= o.CheckpointEverySeconds;
            if (o.OutDir is not null && (stepDue || timeDue) && Step < until)
            {
                observer.OnCheckpoint(Step, SaveCheckpoint(session.Elapsed));
                sinceCheckpoint.Restart();
            }
        }
        Deliver(observer, metrics);
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

    /// <summary>
    /// Hands the steps taken since the last delivery to the observer and metrics.jsonl, reading their losses and
    /// gradient norms from the device in one go; stops the run at the first that is not finite.
    /// </summary>
    void Deliver(ITrainingObserver observer, MetricsLog? metrics)
    {
        if (_pending.Count == 0) return;
        double[] values;
        using (var scope = NewDisposeScope())
            values = stack(_pending.Select(p => p.Values)).to(ScalarType.Float64).cpu().data<double>().ToArray();
        var pending = _pending.ToList();
        foreach (var (_, t) in pending) t.Dispose();
        _pending.Clear();
        for (int i = 0; i < pending.Count; i++)
        {
            var report = pending[i].Report with { Loss = values[2 * i], GradNorm = values[2 * i + 1] };
            if (!double.IsFinite(report.Loss)) throw new NonFiniteLossException(report.Step, "loss", report.Loss);
            // fp16: overflowing gradients are the loss scaler's business (the step was skipped), not an error.
            if (!double.IsFinite(report.GradNorm) && _scaler is null) throw new NonFiniteLossException(report.Step, "gradient norm", report.GradNorm);
            observer.OnStep(report);
            if (report.IsLogStep) metrics?.Write(report);
        }
    }

    /// <summary>
    /// Seconds of one step's phases, measured with the device synchronised between them: wall-clock, and the CPU time
    /// the process spent in each (all its threads, user and system). On a busy machine the wall-clock figures mostly
    /// measure the scheduler; the CPU ones still measure the work.
    /// </summary>
    public sealed record StepTiming(double Forward, double Backward, double Optimizer, double Loss,
        double ForwardCpu = 0, double BackwardCpu = 0, double OptimizerCpu = 0)
    {
        public double Total => Forward + Backward + Optimizer;
        public double TotalCpu => ForwardCpu + BackwardCpu + OptimizerCpu;
    }

    /// <summary>
    /// One training step as <see cref="Run"/> takes it, timed phase by phase (forward with the loss, backward,
    /// optimizer with clipping and, in mixed precision, the gradient and weight copies). Waits for the device between
    /// phases, so it is for benchmarks; throws <see cref="NonFiniteLossException"/> as <see cref="Run"/> would.
    /// </summary>
    public StepTiming TimedStep()
    {
        _model.train();
        _mixed?.Module.train();
        var clock = new PhaseClock(Device);
        var (values, _) = TrainStep(clock);
        using (values)
        {
            var read = values.to(ScalarType.Float64).cpu().data<double>().ToArray();
            if (!double.IsFinite(read[0])) throw new NonFiniteLossException(Step, "loss", read[0]);
            if (!double.IsFinite(read[1]) && _scaler is null) throw new NonFiniteLossException(Step, "gradient norm", read[1]);
            return new StepTiming(clock.Wall[0], clock.Wall[1], clock.Wall[2], read[0], clock.Cpu[0], clock.Cpu[1], clock.Cpu[2]);
        }
    }

    enum Phase { Forward, Backward, Optimizer }

    /// <summary>Accumulates the wall-clock and CPU seconds of each phase; waits for a CUDA device before reading the clocks.</summary>
    sealed class PhaseClock(Device device)
    {
        readonly Stopwatch _wall = Stopwatch.StartNew();
        TimeSpan _cpu = Environment.CpuUsage.TotalTime;
        public readonly double[] Wall = new double[3], Cpu = new double[3];

        /// <summary>Charges the time since the last lap to <paramref name="phase"/>.</summary>
        public void Lap(Phase phase)
        {
            if (device.type == DeviceType.CUDA) cuda.synchronize();
            Wall[(int)phase] += _wall.Elapsed.TotalSeconds;
            _wall.Restart();
            var cpu = Environment.CpuUsage.TotalTime;
            Cpu[(int)phase] += (cpu - _cpu).TotalSeconds;
            _cpu = cpu;
        }
    }

    /// <summary>
    /// One optimizer step: gradients of <see cref="TrainOptions.GradAccumulation"/> micro-batches, clipping, AdamW.
    /// Returns [mean loss, gradient norm] as a tensor on the device (the caller disposes it) and the learning rate:
    /// nothing here waits for the device, except fp16's overflow check (as PyTorch's GradScaler).
    /// </summary>
    (Tensor Values, double Lr) TrainStep(PhaseClock? clock)
    {
        // Between steps: free heap pages go back to the kernel when resident memory has crept up (see NativeMemory). The
        // thread count stays as the run fixed it (see ThreadPolicy.ForRun).
        NativeMemory.TrimIfGrown();
        using var scope = NewDisposeScope();
        var o = Options;
        double lr = Schedule.At(Step);
        var random = BatchRandom(o.Seed, Step);
        TrainingRng.BeginStep(Device, o.Seed, Step);
        var model = _mixed?.Model ?? _model;
        double scale = _scaler?.Scale ?? 1;
        _optimizer.ZeroGrad();
        clock?.Lap(Phase.Optimizer);
        Tensor? total = null;
        for (int micro = 0; micro < o.GradAccumulation; micro++)
        {
            var batch = _data.TrainBatch(o.BatchSize, random).To(Device);
            var logits = model.Logits(batch.Input);
            // Mixed precision: the loss (softmax over the vocabulary) in float32.
            if (_mixed is not null) logits = logits.to_type(ScalarType.Float32);
            var loss = Loss(logits, batch.Target, batch.LossMask);
            clock?.Lap(Phase.Forward);
            double factor = scale / o.GradAccumulation;
            (factor != 1 ? loss * factor : loss).backward();
            // Mixed precision: into the float32 gradients, unscaled.
            _mixed?.AccumulateGradients(1 / scale);
            clock?.Lap(Phase.Backward);
            total = total is null ? loss.detach() : total + loss.detach();
        }
        // With clipping off, an infinite bound still returns the norm (for the logs) and leaves the gradients alone.
        var gradNorm = _optimizer.ClipGradNorm(o.GradClip > 0 ? o.GradClip : double.PositiveInfinity);
        bool apply = _scaler is null || _scaler.Update(overflowed: !gradNorm.isfinite().item<bool>());
        if (apply)
        {
            _optimizer.Step(lr);
            _mixed?.RefreshWeights();
        }
        clock?.Lap(Phase.Optimizer);
        Step++;
        var values = stack(new[] { (total! / o.GradAccumulation).to(gradNorm.dtype), gradNorm.to(total!.device) });
        return (values.DetachFromDisposeScope(), lr);
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
            LossScale = _scaler?.Scale,
            LossScaleGoodSteps = _scaler?.GoodSteps ?? 0,
            Threads = Threads,
        };
        Checkpoint.Save(dir, Config, _model, _optimizer, state, _data, Device);
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
        foreach (var (_, t) in _pending) t.Dispose();
        _mixed?.Dispose();
        _optimizer.Dispose();
        if (_ownsModel) _model.Dispose();
    }

    sealed class NullObserver : ITrainingObserver { }
}
