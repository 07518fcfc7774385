namespace TransformerForge.Training;

/// <summary>
/// How a model is trained. Immutable; change with <c>with</c>. <see cref="Validate"/> names the first bad option.
/// </summary>
public sealed record TrainOptions
{
    /// <summary>Total optimizer steps of the run (the cosine schedule ends here).</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>Sequences per micro-batch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Micro-batches whose gradients are summed before each optimizer step.</summary>
    public int GradAccumulation { get; init; } = 1;
    /// <summary>Peak learning rate, reached at the end of warmup.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Steps of linear warmup from 0 to <see cref="LearningRate"/>.</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>The cosine decay ends at <see cref="LearningRate"/> × this ratio.</summary>
    public double MinLrRatio { get; init; } = 0.1;
    /// <summary>Decoupled (AdamW) weight decay, applied to matrices only (not norms, biases or embeddings).</summary>
    public double WeightDecay { get; init; } = 0.01;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.99;
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Largest global gradient L2 norm; 0 turns clipping off.</summary>
    public double GradClip { get; init; } = 1.0;
    /// <summary>Evaluate every this many steps (and at the end); 0 evaluates only at the end.</summary>
    public int EvalEvery { get; init; } = 100;
    /// <summary>Validation batches per evaluation (text), or held-out examples / <see cref="BatchSize"/> (tasks).</summary>
    public int EvalBatches { get; init; } = 8;
    /// <summary>Print samples every this many steps (and at the end); 0 turns samples off.</summary>
    public int SampleEvery { get; init; } = 500;
    /// <summary>How many samples to print each time.</summary>
    public int SampleCount { get; init; } = 2;
    /// <summary>Tokens to generate per text sample.</summary>
    public int SampleLength { get; init; } = 100;
    /// <summary>Report progress (loss, tokens/s, ETA) every this many steps.</summary>
    public int LogEvery { get; init; } = 10;
    /// <summary>Write a checkpoint every this many steps (and at the end); 0 only at the end.</summary>
    public int CheckpointEvery { get; init; } = 500;
    /// <summary>Also write one once this many seconds have passed since the last (0 = off): a long run keeps recent progress whatever its step rate.</summary>
    public double CheckpointEverySeconds { get; init; } = 600;
    /// <summary>Stop once held-out exact match reaches this fraction (synthetic tasks only); null never stops early.</summary>
    public double? TargetExactMatch { get; init; }
    public int Seed { get; init; } = 1234;
    /// <summary>cpu, cuda or cuda:N.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Run directory: metrics.jsonl and the checkpoint/ folder. Null keeps nothing on disk.</summary>
    public string? OutDir { get; init; }
    /// <summary>
    /// fp32, or mixed precision: bf16 or fp16 matmuls and attention over float32 master weights and optimizer state
    /// (fp16 with dynamic loss scaling). See <see cref="MixedPrecision"/>.
    /// </summary>
    public string Precision { get; init; } = Training.Precision.Fp32;
    /// <summary>fp16: the loss scale to start from (halved on every overflow, doubled after 2000 clean steps).</summary>
    public double InitialLossScale { get; init; } = LossScaler.DefaultInitialScale;
    /// <summary>AdamW over flat parameter, gradient and moment buffers (see <see cref="AdamW"/>); false: one set of operations per tensor.</summary>
    public bool FlatOptimizer { get; init; } = true;

    /// <summary>Sequences per optimizer step.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int EffectiveBatchSize => BatchSize * GradAccumulation;

    public void Validate()
    {
        static void Check(bool ok, string option, string message)
        {
            if (!ok) throw new ArgumentException($"training option {option} {message}");
        }
        Check(Steps > 0, "steps", $"must be a positive integer, got {Steps}");
        Check(BatchSize > 0, "batch_size", $"must be a positive integer, got {BatchSize}");
        Check(GradAccumulation > 0, "grad_accumulation", $"must be a positive integer, got {GradAccumulation}");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), "learning_rate", $"must be a positive number, got {LearningRate}");
        Check(WarmupSteps >= 0, "warmup_steps", $"must not be negative, got {WarmupSteps}");
        Check(MinLrRatio is >= 0 and <= 1, "min_lr_ratio", $"must be in [0, 1], got {MinLrRatio}");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), "weight_decay", $"must not be negative, got {WeightDecay}");
        Check(Beta1 is >= 0 and < 1, "beta1", $"must be in [0, 1), got {Beta1}");
        Check(Beta2 is >= 0 and < 1, "beta2", $"must be in [0, 1), got {Beta2}");
        Check(Epsilon > 0, "epsilon", $"must be positive, got {Epsilon}");
        Check(GradClip >= 0 && double.IsFinite(GradClip), "grad_clip", $"must not be negative (0 turns it off), got {GradClip}");
        Check(EvalEvery >= 0, "eval_every", $"must not be negative, got {EvalEvery}");
        Check(EvalBatches > 0, "eval_batches", $"must be a positive integer, got {EvalBatches}");
        Check(SampleEvery >= 0, "sample_every", $"must not be negative, got {SampleEvery}");
        Check(SampleCount >= 0, "sample_count", $"must not be negative, got {SampleCount}");
        Check(SampleLength > 0, "sample_length", $"must be a positive integer, got {SampleLength}");
        Check(LogEvery > 0, "log_every", $"must be a positive integer, got {LogEvery}");
        Check(CheckpointEvery >= 0, "checkpoint_every", $"must not be negative, got {CheckpointEvery}");
        Check(CheckpointEverySeconds >= 0 && double.IsFinite(CheckpointEverySeconds), "checkpoint_every_seconds", $"must not be negative, got {CheckpointEverySeconds}");
        Check(TargetExactMatch is null or (> 0 and <= 1), "target_exact_match", $"must be in (0, 1], got {TargetExactMatch}");
        Check(!string.IsNullOrWhiteSpace(Device), "device", "must be cpu, cuda or cuda:N");
        Check(Training.Precision.Names.Contains(Precision), "precision", $"must be one of {string.Join(", ", Training.Precision.Names)}, got '{Precision}'");
        Check(InitialLossScale > 0 && double.IsFinite(InitialLossScale), "initial_loss_scale", $"must be a positive number, got {InitialLossScale}");
        Check(FlatOptimizer || Precision == Training.Precision.Fp32, "precision", $"{Precision} needs the flat optimizer (flat_optimizer: true)");
    }
}
