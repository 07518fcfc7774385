namespace TransformerForge.Training;

/// <summary>
/// Dynamic loss scaling for float16 training (Micikevicius et al. 2018, "Mixed Precision Training"; the policy of
/// PyTorch's GradScaler): the loss is multiplied by <see cref="Scale"/> before the backward pass so that small
/// gradients do not flush to zero in float16; gradients are divided by it again in float32. A step whose gradients
/// overflowed (inf or NaN) is skipped and the scale halved; after <see cref="GrowthInterval"/> clean steps in a row it doubles.
/// </summary>
public sealed class LossScaler
{
    public const double DefaultInitialScale = 65536;
    public const int GrowthInterval = 2000;
    const double Growth = 2, Backoff = 0.5;
    /// <summary>Below this the model overflows whatever the scale: the run has diverged.</summary>
    public const double MinimumScale = 1.0 / (1 << 24);

    public LossScaler(double scale = DefaultInitialScale, int goodSteps = 0)
    {
        if (!(scale > 0) || double.IsInfinity(scale)) throw new ArgumentException($"the loss scale must be a positive finite number, got {scale}");
        Scale = scale;
        GoodSteps = goodSteps;
    }

    public double Scale { get; private set; }
    /// <summary>Clean steps since the scale last changed.</summary>
    public int GoodSteps { get; private set; }
    /// <summary>Steps skipped so far because their gradients overflowed.</summary>
    public int SkippedSteps { get; private set; }

    /// <summary>Records a step's outcome and adapts the scale; returns whether the optimizer should apply it.</summary>
    public bool Update(bool overflowed)
    {
        if (overflowed)
        {
            Scale *= Backoff;
            GoodSteps = 0;
            SkippedSteps++;
            return false;
        }
        if (++GoodSteps >= GrowthInterval)
        {
            Scale *= Growth;
            GoodSteps = 0;
        }
        return true;
    }
}
